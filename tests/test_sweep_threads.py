"""run_cells with worker processes: each worker gets its share of the cores as threads, and the
calling process (its environment, its Numba threads) is left as it was."""

import os

import numba

from hamiltonian_cnn import sweep


def threads_in_worker(cell):
    """Runs in a worker process: the thread counts it sees."""
    from threadpoolctl import threadpool_info

    blas = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return {"numba": numba.get_num_threads(), "blas": blas, "cell": cell["k"]}


def test_workers_get_a_share_of_the_cores_and_the_caller_is_untouched(tmp_path):
    before_env, before_threads = dict(os.environ), numba.get_num_threads()
    cells = [{"k": k} for k in range(3)]
    results = sweep.run_cells(threads_in_worker, cells, sweep.CellStore(tmp_path), workers=2, progress=False)
    share = max(1, (os.cpu_count() or 1) // 2)
    assert [r["cell"] for r in results] == [0, 1, 2]
    for r in results:
        assert r["numba"] == min(share, numba.config.NUMBA_NUM_THREADS)
        assert all(n == share for n in r["blas"])
    assert dict(os.environ) == before_env and numba.get_num_threads() == before_threads
