"""A stand-in `tensorrt` module: exactly the documented calls archivecolor's engine build makes
(TensorRT 10 with BuilderFlag.FP16, or 11 without it, strongly typed), each checked as TensorRT
checks it and recorded, so the build's sequence can be tested on a CPU.

What it cannot prove: that real TensorRT accepts our ONNX graph, picks fp16 kernels, or that
the engine's output is right (it serialises a record, not a compiled network); the engine run
itself (TensorRTBackend.run: torch CUDA memory, execute_async_v3) needs a GPU.
"""

from __future__ import annotations

import enum
import json
import types


def make(version: str = "10.3.0", fail_build: bool = False) -> types.ModuleType:
    """A fresh module (its `calls` list empty); version 11+ has no BuilderFlag.FP16."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []
    major = int(version.split(".")[0])

    class Logger:
        WARNING, ERROR = 2, 1

        def __init__(self, severity=2):
            self.severity = severity

    class NetworkDefinitionCreationFlag(enum.IntEnum):
        STRONGLY_TYPED = 5

    class MemoryPoolType(enum.IntEnum):
        WORKSPACE = 0

    members = {"TF32": 7} if major >= 11 else {"FP16": 0, "TF32": 7}
    BuilderFlag = enum.IntEnum("BuilderFlag", members)

    class Network:
        def __init__(self, flags):
            self.flags, self.inputs = flags, []

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse(self, model: bytes) -> bool:
            import onnx

            try:
                graph = onnx.load_from_string(model).graph
            except Exception as exc:
                self.errors.append(f"not an ONNX model: {exc}")
                return False
            self.network.inputs = [i.name for i in graph.input]
            kinds = {i.name: i.type.tensor_type.elem_type for i in graph.input}
            trt.calls.append(("parse", {"inputs": self.network.inputs, "input_types": kinds,
                                        "fp16_inside": any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)}))
            return True

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, index):
            return self.errors[index]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, minimum, opt, maximum):
            if not all(len(s) == 4 for s in (minimum, opt, maximum)):
                raise ValueError("shapes of rank 4 expected")
            if not all(a <= b <= c for a, b, c in zip(minimum, opt, maximum)):
                raise ValueError(f"min <= opt <= max violated: {minimum} {opt} {maximum}")
            self.shapes[name] = (tuple(minimum), tuple(opt), tuple(maximum))
            trt.calls.append(("set_shape", name, self.shapes[name]))

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = data

        def serialize(self):
            return memoryview(self.data + b"+tuned")

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.cache, self.pools = set(), [], None, {}

        def set_memory_pool_limit(self, pool, size):
            self.pools[MemoryPoolType(pool)] = int(size)
            trt.calls.append(("workspace", int(size)))

        def set_flag(self, flag):
            self.flags.add(BuilderFlag(flag))
            trt.calls.append(("set_flag", BuilderFlag(flag).name))

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data: bytes):
            trt.calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            trt.calls.append(("set_timing_cache", bool(ignore_mismatch)))
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            trt.calls.append(("create_network", int(flags)))
            return Network(int(flags))

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            for profile in config.profiles:
                if set(profile.shapes) != set(network.inputs):
                    raise ValueError(f"profile names {sorted(profile.shapes)}, the network's inputs are {network.inputs}")
            trt.calls.append(("build", {"profiles": len(config.profiles), "flags": sorted(f.name for f in config.flags)}))
            if fail_build:
                return None
            record = {"stand-in engine": version, "flags": sorted(f.name for f in config.flags), "strongly_typed":
                      bool(network.flags & (1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED)),
                      "shapes": {k: v for p in config.profiles for k, v in p.shapes.items()}}
            return memoryview(json.dumps(record).encode())

    for name, value in dict(Logger=Logger, NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag, MemoryPoolType=MemoryPoolType,
                            BuilderFlag=BuilderFlag, OnnxParser=OnnxParser, Builder=Builder).items():
        setattr(trt, name, value)
    return trt
