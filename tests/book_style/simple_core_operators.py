# Stage 2 (steps 20-23): the operators of the simple core, with scalars and arrays on either side.
import numpy as np

import dezero
from dezero.core_simple import Variable, setup_variable

setup_variable()
print("is_simple_core:", dezero.is_simple_core)

a = Variable(np.array(3.0))
b = Variable(np.array(2.0))
y = a * b + 1.0
y.backward()
print(y, a.grad, b.grad)

x = Variable(np.array(2.0))
y = 3.0 / x - x ** 3 + np.array(1.5) - (-x) * 2.0
y.backward()
print(y, x.grad)

x = Variable(np.array([1.0, 2.0, 3.0]))
y = (x + x) * x  # the same variable used twice: gradients add up
y.backward()
print(y, x.grad)
print(len(x), x.shape, x.ndim, x.size, x.dtype)
