# Step 29 style: Newton's method with a hand-written second derivative, simple core.
import numpy as np

import dezero

if not dezero.is_simple_core:
    from dezero.core_simple import Variable, setup_variable, no_grad, using_config, Config
    setup_variable()


def f(x):
    return x ** 4 - 2 * x ** 2


def gx2(x):
    return 12 * x ** 2 - 4


x = Variable(np.array(2.0))
for i in range(10):
    print(i, x)
    y = f(x)
    x.cleargrad()
    y.backward()
    x.data -= x.grad / gx2(x.data)

with no_grad():
    y = f(x)
print("creator kept under no_grad:", y.creator is not None, Config.enable_backprop)
with using_config("enable_backprop", True):
    y = f(x)
print("creator kept with backprop:", y.creator is not None)
