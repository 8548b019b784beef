"""papers/notebooks: each runs top to bottom, and none is stored with outputs."""

import pathlib

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "papers" / "notebooks").glob("*.ipynb"))


def test_the_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    assert names == [
        "01_convolution_from_hamiltonian.ipynb",
        "02_boltzmann_weights.ipynb",
        "03_transposed_convolution.ipynb",
        "04_weight_sharing_vs_full_coupling.ipynb",
        "05_receptive_fields_and_parameters.ipynb",
        "06_relaxation.ipynb",
        "07_restricted_boltzmann_machine.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path):
    from nbclient import NotebookClient

    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell (the asserts inside are the checks)
    assert any(cell.get("outputs") for cell in book.cells if cell.cell_type == "code")
