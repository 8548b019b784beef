"""The compile-ahead helper process (nn/ahead.py): ``python -m hamiltonian_cnn.nn._ahead_worker``
reads the kernels to compile from stdin and reports on stdout. A module of its own, which the
package never imports, so that ``-m`` runs it exactly once."""

import sys

import hamiltonian_cnn  # noqa: F401  (the same Numba cache dir as the process that asked)
from hamiltonian_cnn.nn.ahead import _work

if __name__ == "__main__":
    _work(sys.stdin.buffer, sys.stdout)
