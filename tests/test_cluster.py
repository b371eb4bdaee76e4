"""Where jobs run and what they ask for (llmal.config.cluster), without a scheduler."""
from __future__ import annotations

import re

import pytest
from conftest import tiny_config

from llmal.config import cluster, validate_config


def test_site_settings_from_file_and_environment(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text("cpu_partition: short\ngpu_partition: gpu\ncpus_per_gpu: 8\naccount: proj\n")
    env = {"LLMAL_SLURM_SITE": str(path), "LLMAL_SLURM_GPU_PARTITION": "a100", "LLMAL_SLURM_QOS": "high"}
    monkey = pytest.MonkeyPatch()
    monkey.setattr(cluster.os, "environ", env)
    try:
        site = cluster.site_settings(tmp_path)
        assert site == {"cpu_partition": "short", "gpu_partition": "a100", "cpus_per_gpu": 8,
                        "account": "proj", "qos": "high"}
        assert cluster.static_resources(site) == {"slurm_account": "proj", "qos": "high"}
        assert cluster.profile_values() == {"status_command": "squeue", "status_seconds": 20,
                                            "group_size": 10, "group_cores": 8}
        path.write_text("partition: x\n")
        with pytest.raises(cluster.SiteError, match=r"site.yaml: unknown key\(s\) partition"):
            cluster.site_settings(tmp_path)
        path.write_text("group_size: 0\n")
        with pytest.raises(cluster.SiteError, match="group_size"):
            cluster.site_settings(tmp_path)
    finally:
        monkey.undo()
    assert cluster.site_settings(tmp_path / "none", environ={}) == {}


def test_placement_follows_what_the_job_is():
    config = tiny_config(
        encoders={"tfidf": {"kind": "tfidf"}, "bert": {"kind": "transformer", "model": "m"}},
        recipes={"linear": {"kind": "logistic"}, "ft": {"kind": "finetune", "gpus": 2}})
    config["annotators"]["gpt"] = {"kind": "openai_batch", "model": "gpt-4o-mini", "prompt": "holistic"}
    config["annotators"]["qwen"] = {"kind": "vllm", "model": "q", "prompt": "holistic",
                                    "engine_args": {"tensor_parallel_size": 4}}
    config["prices"] = {"gpt-4o-mini": {"input": 0.1, "output": 0.2}, "q": {"input": 0, "output": 0}}
    config["conditions"] = {
        "lin": {"annotator": "crowd", "sampler": "entropy"},
        "ft": {"annotator": "crowd", "sampler": "entropy", "recipe": "ft"},
        "gpt_lin": {"annotator": "gpt", "sampler": "entropy"},
        "gpt_ft": {"annotator": "gpt", "sampler": "entropy", "recipe": "ft"},
        "gpt_pre": {"annotator": "gpt", "sampler": "entropy", "annotation": "precomputed"},
        "qwen_lazy": {"annotator": "qwen", "sampler": "entropy"},
    }
    config = validate_config(config, where="test")
    site = {"cpu_partition": "cpu", "gpu_partition": "gpu", "gpu_model": "h100"}
    part = {c: cluster.al_partition(config, c, site) for c in config["conditions"]}
    assert part == {"lin": "cpu", "ft": "gpu", "gpt_lin": "cpu", "gpt_ft": "gpu", "gpt_pre": "cpu", "qwen_lazy": "gpu"}
    assert [c for c in config["conditions"] if cluster.runs_on_submit_host(config, c, site)] == ["gpt_lin"]
    assert cluster.al_gpus(config, "ft") == 2 and cluster.al_gpus(config, "qwen_lazy") == 1
    assert cluster.al_group(config, "lin", site) == "al_cpu" and cluster.al_group(config, "ft", site) is None
    assert cluster.gpu_model(site, 0) == "" and cluster.gpu_model(site, 2) == "h100"
    [warning] = cluster.placement_warnings(config, site)
    assert "gpt_ft" in warning and "network_partition" in warning
    net = {**site, "network_partition": "web"}
    assert cluster.al_partition(config, "gpt_ft", net) == "web" and not cluster.placement_warnings(config, net)
    assert not cluster.runs_on_submit_host(config, "gpt_lin", net)
    assert cluster.annotate_gpus(config["annotators"]["qwen"]) == 4
    assert cluster.mem_mb(100, 0) == 1024 + 800 and cluster.mem_mb(0, 1) == 4096
    regex = cluster.names_regex(["a-b", "c"])
    assert re.fullmatch(regex, "a-b") and not re.fullmatch(regex, "ab")
    assert not re.fullmatch(cluster.names_regex([]), "x")
    assert cluster.workstation_gpu_slots({"LLMAL_GPU_SLOTS": "3", "CUDA_VISIBLE_DEVICES": "0,1"}) == 6
    assert cluster.workstation_gpu_slots({"CUDA_VISIBLE_DEVICES": ""}) == 4
