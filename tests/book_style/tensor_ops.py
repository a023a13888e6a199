# Steps 37-41 style: tensors, broadcasting, sum, reshape and matmul through `import dezero.functions`.
import numpy as np

import dezero.functions as F
from dezero import Variable
from dezero.utils import sum_to

x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
c = Variable(np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]))
y = F.sum(F.sin(x) * c + x, axis=0)
y.backward()
print(y, x.grad)

x0 = Variable(np.array([1.0, 2.0, 3.0]))
x1 = Variable(np.array([10.0]))
y = x0 + x1
y.backward()
print(y, x1.grad)

x = Variable(np.random.RandomState(0).randn(2, 3))
W = Variable(np.random.RandomState(1).randn(3, 4))
y = F.matmul(x, W)
y.backward()
print(x.grad.shape, W.grad.shape, np.round(y.data, 6))
print(F.reshape(x, (6,)).shape, x.T.shape, sum_to(np.ones((2, 3)), (1, 3)))
print(F.add(np.ones((3, 3)), np.arange(3.0).reshape(3, 1)))
