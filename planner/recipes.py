"""Deployment recipes: the serving command a user would run for each chosen deployment.

The engine follows the system's software stack (the one its efficiencies were calibrated on):
TensorRT-LLM's `trtllm-serve` on NVIDIA, vLLM on AMD ROCm, Intel Gaudi and Google TPU. Flags
carry the plan's parallelism (TP, PP, EP with data-parallel attention for wide-EP MoE),
concurrency (max batch size), context length, precision and speculative decoding; a
disaggregated pool gets its prefill/decode role.
"""

from __future__ import annotations

import shlex

from planner.schema import Model, Precision, System, Workload


def recipe(row: dict, system: System, stack: str, model: Model, workload: Workload) -> str:
    """One command line for a deployment row of a plan (a dict with the deployments columns)."""
    precision = Precision(row["precision"]) if row.get("precision") else workload.precisions[0]
    tp, pp, ep = int(row["tp"]), int(row["pp"]), int(row["ep"])
    wide_ep = ep > 1 and ep == tp
    context = workload.input_tokens + workload.output_tokens
    repo = model.hf_repo or model.id
    mode = row["mode"]
    if stack == "nvidia-trtllm":
        parts = ["trtllm-serve", repo, "--tp_size", str(tp), "--pp_size", str(pp)]
        if ep > 1:
            parts += ["--ep_size", str(ep)]
        parts += ["--max_batch_size", str(int(row["concurrency"])),
                  "--max_seq_len", str(context)]
        if precision == Precision.fp4:
            parts += ["--kv_cache_free_gpu_memory_fraction", "0.9"]
        command = shlex.join(parts)
        notes = []
        if wide_ep:
            notes.append("enable_attention_dp: true")
        if row.get("speculative") and model.mtp_layers:
            draft = workload.speculative.draft_tokens if workload.speculative else 3
            notes.append(f"speculative_config: {{decoding_type: MTP, num_nextn_predict_layers: {draft}}}")
        if notes:
            command += " --extra_llm_api_options <(echo '" + "; ".join(notes) + "')"
        if mode != "aggregated":
            command += f"  # {mode} worker of a disaggregated pool (trtllm-serve disaggregated / Dynamo)"
        return command
    if stack in ("amd-rocm", "intel-gaudi", "google-tpu"):
        parts = ["vllm", "serve", repo]
        if wide_ep:
            parts += ["--data-parallel-size", str(ep), "--enable-expert-parallel"]
        else:
            parts += ["--tensor-parallel-size", str(tp)]
            if ep > 1:
                parts += ["--enable-expert-parallel"]
        if pp > 1:
            parts += ["--pipeline-parallel-size", str(pp)]
        parts += ["--max-num-seqs", str(int(row["concurrency"])), "--max-model-len", str(context)]
        if precision == Precision.fp8:
            parts += ["--quantization", "fp8", "--kv-cache-dtype", "fp8"]
        if row.get("speculative") and model.mtp_layers:
            draft = workload.speculative.draft_tokens if workload.speculative else 3
            parts += ["--speculative-config",
                      f'{{"method": "deepseek_mtp", "num_speculative_tokens": {draft}}}']
        if mode != "aggregated":
            role = "kv_producer" if mode == "prefill" else "kv_consumer"
            parts += ["--kv-transfer-config",
                      f'{{"kv_connector": "NixlConnector", "kv_role": "{role}"}}']
        command = shlex.join(parts)
        if precision == Precision.fp4:
            command += "  # an FP4 (MXFP4/NVFP4) checkpoint of the model"
        return command
    return f"# {system.name}: served through the vendor's managed stack; no self-serve command"
