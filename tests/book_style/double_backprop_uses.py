# Step 36 style: double backprop (a gradient inside the function that is differentiated).
import numpy as np

import dezero.functions as F
from dezero import Variable

x = Variable(np.array(2.0))
y = x ** 2
y.backward(create_graph=True)
gx = x.grad
x.cleargrad()
z = gx ** 3 + y
z.backward()
print(x.grad)

# Newton's method on a vector function: the Hessian-vector product by double backprop
x = Variable(np.array([1.0, 2.0]))
v = Variable(np.array([4.0, 5.0]))
y = F.sum(x ** 3 + F.sin(x) * x)
y.backward(create_graph=True)
gx = x.grad
x.cleargrad()
z = F.matmul(v.reshape(1, 2), gx.reshape(2, 1))
z.backward()
print(x.grad)
