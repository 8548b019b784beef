"""provenance: what produced a result, the processor included (timings depend on it)."""

import platform

from hamiltonian_cnn import sweep


def test_cpu_model_reads_the_model_name_of_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n"
                    "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n")
    assert sweep.cpu_model(info) == "Intel(R) Xeon(R) Gold 6338"


def test_cpu_model_without_cpuinfo_falls_back_to_platform(tmp_path):
    assert sweep.cpu_model(tmp_path / "absent") == (platform.processor() or None)


def test_provenance_records_commit_machine_arguments_and_seed():
    info = sweep.provenance({"epochs": 3}, seed=7, wall_time_s=1.5)
    assert info["cpu"] == sweep.cpu_model()
    assert info["arguments"] == {"epochs": 3} and info["seed"] == 7 and info["wall_time_s"] == 1.5
    assert info["git_commit"] == sweep.git_commit()
    assert info["versions"]["hamiltonian_cnn"] is not None
