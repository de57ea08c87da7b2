"""Export a sentence-transformers model to ONNX so that answering needs no torch.

Only models made of a Transformer, a mean or CLS Pooling and an optional
Normalize are exported; anything else answers through sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from index.embedding.embed import CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxEmbedder

# An export must reproduce sentence-transformers' vectors this closely to be used.
MIN_COSINE = 0.9999
# int8 with one scale per weight matrix. One per output channel keeps passage vectors far closer to fp32's
# (cosine 0.992 on average against 0.955, `make bench-embedder-quantization`), but with the ranker refitted and
# the selector retrained and it and the reader recalibrated on it, the answers were no better on the calibration
# questions (bench/results/*-embedder-per-channel*.json), and the switch would re-embed every index: not yet.
PER_CHANNEL = False
_PROBES = ["A short probe.", "Verbatim quotes documents word for word, with the file and line they came from."]


class NotExportable(Exception):
    """The model cannot be exported faithfully; the message says why."""


def export(st_model, directory: Path, quantize: bool = False, per_channel: bool = PER_CHANNEL,
           fp32_nodes: str = "") -> None:
    """Write model.onnx, tokenizer.json and embedder.json for `st_model` into `directory`, its weights quantized
    to int8 when `quantize` (one scale per output channel, or per weight matrix; nodes whose name matches the
    regex `fp32_nodes` are left fp32)."""
    import torch

    modules = list(st_model)
    transformer = modules[0]
    pooling = _pooling_mode(modules)
    normalize = any(type(module).__name__ == "Normalize" for module in modules[2:])
    if len(modules) > 2 + normalize:
        raise NotExportable(f"modules after pooling: {[type(m).__name__ for m in modules[2:]]}")
    tokenizer = st_model.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise NotExportable("its tokenizer has no fast (tokenizer.json) form")
    encoded = tokenizer(_PROBES, padding=True, return_tensors="pt")
    input_names = [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in encoded]
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / MODEL_FILE
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; faithfulness is checked below instead
        torch.onnx.export(
            _LastHiddenState(transformer.auto_model, input_names).eval(),
            tuple(encoded[name] for name in input_names),
            str(model_path),
            input_names=input_names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*input_names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        quantize_int8(model_path, model_path, per_channel, fp32_nodes)
    preoptimize(model_path)
    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.save_pretrained(scratch)
        shutil.copy(Path(scratch) / TOKENIZER_FILE, directory / TOKENIZER_FILE)
    config = {
        "pooling": pooling,
        "normalize": normalize,
        "max_seq_length": int(st_model.max_seq_length),
        "dimension": int(st_model.get_embedding_dimension() if hasattr(st_model, "get_embedding_dimension")
                         else st_model.get_sentence_embedding_dimension()),
        "input_names": input_names,
        "quantized": quantize,
        "per_channel": quantize and per_channel,
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    _check_faithful(st_model, directory, MIN_COSINE if not quantize else 0.95)


def _pooling_mode(modules: list) -> str:
    if len(modules) < 2 or type(modules[0]).__name__ != "Transformer" or type(modules[1]).__name__ != "Pooling":
        raise NotExportable(f"not a Transformer + Pooling model: {[type(m).__name__ for m in modules]}")
    config = modules[1].get_config_dict()
    mode = config.get("pooling_mode") or (
        "mean" if config.get("pooling_mode_mean_tokens") else "cls" if config.get("pooling_mode_cls_token") else None
    )
    if mode not in ("mean", "cls"):
        raise NotExportable(f"pooling {mode or config} is not mean or CLS")
    return mode


class _LastHiddenState:
    """A torch module returning the transformer's last hidden state (built lazily: torch is imported late)."""

    def __new__(cls, model, input_names):
        import torch

        class Wrapper(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *inputs):
                return self.model(**dict(zip(input_names, inputs))).last_hidden_state

        return Wrapper()


def quantize_int8(source: Path, target: Path, per_channel: bool = PER_CHANNEL, fp32_nodes: str = "") -> None:
    """The ONNX model `source` with its weights quantized to int8 (onnxruntime's dynamic quantization, one scale per
    output channel of each weight matrix or one per matrix) as `target`, which may be `source` itself. Nodes whose
    name matches the regex `fp32_nodes` keep their fp32 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    kept = []
    if fp32_nodes:
        import onnx

        kept = [node.name for node in onnx.load(str(source)).graph.node if re.search(fp32_nodes, node.name)]
    quantized = target.with_suffix(".int8.onnx")
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    quantize_dynamic(str(source), str(quantized), weight_type=QuantType.QInt8, per_channel=per_channel,
                     nodes_to_exclude=kept)
    quantized.replace(target)


def preoptimize(model_path: Path) -> None:
    """Replace an ONNX model by onnxruntime's optimized form of it, so loading it skips that work.

    ORT_ENABLE_EXTENDED fuses what every CPU runs alike; the layout passes ENABLE_ALL adds depend
    on the machine, so those still run at load. Loading it then skips the fusing and ends with the
    same graph (the same outputs, bit for bit)."""
    import onnxruntime

    optimized = model_path.with_suffix(".optimized.onnx")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = 3
    onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    optimized.replace(model_path)


def _check_faithful(st_model, directory: Path, min_cosine: float) -> None:
    reference = st_model.encode(_PROBES, normalize_embeddings=True, convert_to_numpy=True)
    exported = OnnxEmbedder(directory).embed(_PROBES)
    cosines = np.sum(reference * exported, axis=1)
    if float(cosines.min()) < min_cosine:
        raise NotExportable(f"the export's vectors differ from sentence-transformers' (cosine {cosines.min():.5f})")
