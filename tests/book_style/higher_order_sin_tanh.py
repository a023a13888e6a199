# Steps 34-35 style: higher-order derivatives of sin and tanh (values instead of plots/graphs).
import numpy as np

import dezero.functions as F
from dezero import Variable

x = Variable(np.linspace(-7, 7, 9))
y = F.sin(x)
y.backward(create_graph=True)
for i in range(3):
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
    print("sin derivative", i + 2, x.grad)

x = Variable(np.array(1.0))
y = F.tanh(x)
x.name = "x"
y.name = "y"
y.backward(create_graph=True)
for i in range(4):
    gx = x.grad
    x.cleargrad()
    gx.backward(create_graph=True)
gx = x.grad
gx.name = "gx" + str(5)
print(gx.name, gx)
