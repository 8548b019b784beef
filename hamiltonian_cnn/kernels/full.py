"""Full coupling J_{IJ,ij} on flattened sites (eq. (4.1.2)).

    h[n, K] = sum_F J[K, F] x[n, F] + b[K],   y = g(h)

K runs over every output (channel, site), F over every input (channel, site). The field is one
matrix product and its gradients two more; the layer (nn.full) makes them as plain numpy/BLAS
calls, which Numba could not make faster, only slower to start (compiling BLAS bindings costs
seconds). What BLAS cannot do are the fused epilogue y = g(h + b) and the backward prologue
delta = dy g'(y): those are the activation kernels below, the same compiled code as the
convolution kernels use, so a network compiles them once.
"""

from .activations import activate_inplace, delta_from_output

__all__ = ["activate_inplace", "delta_from_output"]
