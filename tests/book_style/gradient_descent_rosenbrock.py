# Step 28 style: gradient descent on the Rosenbrock function with the simple core (grad is an array).
if '__file__' in globals():
    import os
    import sys
    sys.path.append(os.path.join(os.path.dirname(__file__), '..'))
import numpy as np

import dezero
from dezero import Variable

if not dezero.is_simple_core:
    from dezero.core_simple import Variable
    from dezero.core_simple import setup_variable
    setup_variable()


def rosenbrock(x0, x1):
    return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2


x0 = Variable(np.array(0.0))
x1 = Variable(np.array(2.0))
lr = 0.001
for i in range(2000):
    y = rosenbrock(x0, x1)
    x0.cleargrad()
    x1.cleargrad()
    y.backward()
    if i % 250 == 0:
        print(i, x0, x1, y)
    x0.data -= lr * x0.grad
    x1.data -= lr * x1.grad
print("end", x0, x1)
