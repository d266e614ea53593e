"""Every code snippet in README.md and docs/**/*.md runs, offline, in the default test run.

- ```python blocks are executed, one test each (id ``docs/dream.md:3``: the page and the
  block's position among the page's fenced blocks). A page's blocks run in order in one
  namespace and one working folder, as a reader would run them; running one test alone runs
  the blocks before it first.
- ```bash / ```sh / ```console blocks: every command runs. ``realness ...`` goes through the
  CLI's ``main(argv)`` in this process and must exit 0; ``python SCRIPT ...`` and
  ``python -c ...`` run in this process; ``pytest ...`` runs the page's own test file (see
  :meth:`Page.write_pytest_project`); ``export VAR=...`` sets VAR for the rest of the block;
  ``pip install ...`` is not run: what it installs must be this project (with extras that
  exist) or one of its dependencies at a version the project allows. Any other line fails
  unless :data:`NOT_RUN_LINES` names it, so a new kind of line cannot slip through.
- ```yaml blocks are parsed and a RayJob's entrypoint is parsed by the CLI's own parser;
  ```ini blocks are parsed (and configure the page's pytest runs); ```text blocks are output
  or synopses and are not run.

Nothing reaches the network (non-loopback connections are refused): models named on the Hub
come from a loopback fake Hub (tests/fake_hub.py) serving tiny models under those names, the
OpenAI API is a loopback fake (tests/fake_openai.py, via ``OPENAI_BASE_URL``), RAISE-TD is a
tiny copy of its layout at each page's ``../shared/datasets/raise-td``, and the bundled CORE
model is the real one. Blocks that use Ray run on one local Ray started in this process by
realness's own ``connect`` (which forwards the environment to the workers); ``--ray-address``
then keeps that connection. What the snippets name is prepared in each page's working folder
(:func:`build_template`); the few textual changes are :data:`SUBSTITUTIONS`, and the only
change of behaviour is :func:`train_over_tiny_encoders`.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import csv
import io
import linecache
import re
import runpy
import shlex
import shutil
import socket
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import realness
from conftest import REPO_ROOT

# --- the one snippet extractor -----------------------------------------------------------------

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOT_RUN_MARK = re.compile(r"<!--\s*snippet:\s*not run\s*\((?P<reason>.+)\)\s*-->")
SHELL = ("bash", "sh", "console")
# Fenced blocks that are not run: program output, synopses, configuration (checked below).
NOT_CODE = ("text", "yaml", "ini")


@dataclass(frozen=True)
class Snippet:
    """One fenced block of a documentation page.

    Attributes:
        page: the page, relative to the repository (``docs/dream.md``).
        index: the block's position among the page's fenced blocks, from 0.
        line: the line of its opening fence (1-based), for messages.
        language: the fence's language (``python``, ``bash``, ...).
        code: the block's text, dedented to its fence.
        not_run: the reason given by ``<!-- snippet: not run (REASON) -->`` right above it.
    """

    page: str
    index: int
    line: int
    language: str
    code: str
    not_run: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.index}"


def doc_pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]


@cache
def doc_snippets() -> tuple[Snippet, ...]:
    """Every fenced block of :func:`doc_pages`, in page order."""
    found = []
    for path in doc_pages():
        text = path.read_text(encoding="utf-8")
        page = path.relative_to(REPO_ROOT).as_posix()
        for index, match in enumerate(FENCE.finditer(text)):
            indent = len(match.group("indent"))
            code = "".join(line[indent:] for line in match.group("code").splitlines(keepends=True))
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            mark = NOT_RUN_MARK.fullmatch(before.strip())
            found.append(Snippet(page, index, text.count("\n", 0, match.start()) + 1, match.group("lang"), code,
                                 mark.group("reason") if mark else None))
    return tuple(found)


def shell_commands(snippet: Snippet, code: str | None = None) -> list[list[str]]:
    """The commands of a shell block as argument lists: continuations joined, comments dropped, split at ``&&``."""
    code = snippet.code if code is None else code
    if snippet.language == "console":  # only "$ " lines are commands; the rest is their output
        code = "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        current: list[str] = []
        for token in shlex.split(line, comments=True):
            if token in ("|", ";", ">", ">>", "<", "||", "&"):
                raise AssertionError(f"{snippet.id}: unsupported shell syntax {token!r} in {line!r}")
            if token == "&&":
                commands.append(current)
                current = []
            else:
                current.append(token)
        if current:
            commands.append(current)
    return commands


# --- what is not run, and what is changed: explicit, short lists -------------------------------

#: Shell commands (as ``shlex.join`` writes them) that are recognised and deliberately not run.
NOT_RUN_LINES = {
    "python3 -m venv .venv": "creates the virtual environment these tests already run in",
    ". .venv/bin/activate": "activates the virtual environment these tests already run in",
    "pytest -m 'not slow'": "the project's own test suite, which this test is part of",
    "vllm serve Qwen/Qwen2.5-VL-7B-Instruct --port 8000 --max-model-len 8192":
        "a GPU inference server: tests/fake_openai.py stands in for it (see SUBSTITUTIONS)",
    "ray start --head": "starts a Ray cluster: the local Ray this test starts in-process stands in for it",
    "ray start --address HEAD_IP:6379": "joins a Ray cluster: the local Ray this test starts in-process stands in for it",
}

#: Blocks marked ``<!-- snippet: not run (REASON) -->`` in the Markdown, by id.
NOT_RUN_BLOCKS = {"docs/training.md:1"}

#: ``(page, text, replacement, why)``: applied to a block's text before it runs. Replacements
#: are formatted with :attr:`World.values` (the loopback servers' addresses, tiny model folders).
SUBSTITUTIONS = [
    ("docs/describers.md", "http://localhost:8000/v1", "{openai_url}", "vLLM's address: the fake OpenAI-compatible server"),
    ("docs/describers.md", "http://localhost:11434/v1", "{openai_url}", "Ollama's address: the fake OpenAI-compatible server"),
    ("docs/describers.md", "/models/my-vlm", "{vlm_dir}", "a local VLM folder: a tiny LLaVA saved in tmp"),
    ("docs/scaling_out.md", "s3://bucket/generated/", "{workdir}/generated/", "an S3 bucket: a local folder"),
    ("docs/scaling_out.md", " /shared/", " ", "the cluster's shared volume: the page's working folder"),
    ("docs/scaling_out.md", " /data/", " ", "the cluster's data volume: the page's working folder"),
    # Pools sized for a cluster; a 2-core machine holds one actor (one CPU stays free for Ray Data).
    ("docs/scaling_out.md", "actors=8", "actors=1", "a cluster's pool: one actor on 2 cores"),
    ("docs/scaling_out.md", "--actors 4", "--actors 1", "a cluster's pool: one actor on 2 cores"),
    ("docs/scaling_out.md", "--actors 8", "--actors 1", "a cluster's pool: one actor on 2 cores"),
]
#: Applied only on a machine without CUDA.
CUDA_SUBSTITUTIONS = [("docs/describers.md", 'device="cuda"', 'device="cpu"', "no GPU here")]

#: The reader's own objects a page's code uses without defining (a generator, its outputs),
#: run before the page's first block. Kept small and plain so they read as stand-ins.
READERS_OBJECTS = {
    "docs/workflows/metrics.md": '''
import torch

class ToyGenerator(torch.nn.Module):
    """Stands in for the reader's generator: noise squashed into [0, 1]."""

    def forward(self, noise, prompts):
        return torch.sigmoid(noise)

generator = ToyGenerator()
loader = [(torch.randn(2, 3, 64, 64), ["a cat", "a street"], ["No.", None]) for _ in range(2)]
''',
    "docs/workflows/regression.md": '''
import torch

PROMPTS = ["a cat on a sofa", "a street at night"]
DESCRIPTIONS = ["No.", "Somewhat. The street lights have no glow."]

def generate(prompts, seed):
    """Stands in for the reader's generator: seeded noise images."""
    return torch.rand(len(prompts), 3, 64, 64, generator=torch.Generator().manual_seed(seed))

images = generate(prompts=PROMPTS, seed=0)
''',
}


# --- the working folder every page starts from -------------------------------------------------

SMALL_SIDE = 128  # DREAM at its default windows and stride 4 stays fast on a CPU at this size
EXAMPLES = REPO_ROOT / "examples"
BUNDLED_MODEL = Path(realness.__file__).parent / "weights" / "realness-core-lite"


def _small(name: str) -> Image.Image:
    image = Image.open(EXAMPLES / "images" / name).convert("RGB")
    image.thumbnail((SMALL_SIDE, SMALL_SIDE))
    return image


def _save_all(folder: Path, images: dict[str, Image.Image]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in images.items():
        image.save(folder / name)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def build_tiny_raise_td(root: Path) -> Path:
    """RAISE-TD's layout (train/, test/, ratings/) with 6 + 3 small images."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("test", 3)):
        names = [f"{split}{index}.png" for index in range(count)]
        mos = [round(0.4 * index - 1.0, 3) for index in range(count)]
        _save_all(root / split / "images",
                  {name: Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for name in names})
        _write_csv(root / split / "image_descriptions.csv", ["filename", "MOS", "description"],
                   [[name, score, "No." if score > 0 else "Yes. The sky is smeared."] for name, score in zip(names, mos)])
        (root / "ratings").mkdir(exist_ok=True)
        _write_csv(root / "ratings" / f"{split}.csv", ["filename", "MOS_Rating", "MOS_ZScore"],
                   [[name, 50 + 10 * score, score] for name, score in zip(names, mos)])
    return root


def build_template(folder: Path) -> Path:
    """What the snippets refer to, as a reader's folder would hold it.

    ``examples/`` is the repository's own (linked); every other image is a bundled example
    image shrunk to 128 px: ``images/`` (+ ``descriptions.csv``), the single files the snippets
    name, ``generated/``, ``real_photos/``, the ``outputs/<model>/<prompt>`` layout of
    docs/workflows/selection.md, ``sdxl/`` and ``flux/`` with ``_v1`` names, a manifest;
    ``path/to/model`` is the bundled model's folder.
    """
    examples = {name: _small(name) for name in ("astronaut.png", "chelsea.png", "chelsea_edited.png", "coffee.png")}
    folder.mkdir(parents=True)
    (folder / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    (folder / "path" / "to").mkdir(parents=True)
    (folder / "path" / "to" / "model").symlink_to(BUNDLED_MODEL, target_is_directory=True)
    _save_all(folder / "images", examples)
    shutil.copy(EXAMPLES / "descriptions.csv", folder / "descriptions.csv")
    _save_all(folder, {"gen.png": examples["chelsea_edited.png"], "generated.png": examples["chelsea_edited.png"],
                       "a.png": examples["chelsea_edited.png"], "b.png": examples["chelsea.png"],
                       "b.jpg": examples["coffee.png"], "gen1.png": examples["chelsea_edited.png"],
                       "gen2.png": examples["astronaut.png"]})
    png = (EXAMPLES / "images" / "coffee.png").read_bytes()
    (folder / "broken.png").write_bytes(png[: len(png) // 3])  # a truncated file
    _save_all(folder / "generated", examples)
    _save_all(folder / "real_photos", {"astronaut.png": examples["astronaut.png"], "coffee.png": examples["coffee.png"]})
    prompts = {"cat-on-sofa": "chelsea.png", "street-at-night": "coffee.png"}  # as in selection.md
    _save_all(folder / "outputs" / "sdxl", {f"{key}.png": examples[name] for key, name in prompts.items()})
    flux = {f"{key}.png": examples[name].transpose(Image.Transpose.FLIP_LEFT_RIGHT) for key, name in prompts.items()}
    flux["street-at-night.jpg"] = flux.pop("street-at-night.png")  # any image suffix: the key is the stem
    _save_all(folder / "outputs" / "flux", flux)
    _save_all(folder / "sdxl", {f"{key}_v1.png": examples[name] for key, name in prompts.items()})
    _save_all(folder / "flux", {f"{key}_v2.png": examples[name] for key, name in prompts.items()})
    _write_csv(folder / "texts.csv", ["model", "prompt_id", "description"],
               [[model, key, "No."] for model in ("sdxl", "flux") for key in prompts])
    paths = [f"images/{name}" for name in examples]
    (folder / "paths.txt").write_text("\n".join(paths) + "\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": paths}), folder / "manifest.parquet")
    return folder


def add_rated_images(folder: Path) -> None:
    """docs/training.md: ``ratings.csv`` over ``images/``, 15 rated images so 5 folds hold 3 each."""
    rng = np.random.default_rng(1)
    extra = {f"rated{index:02d}.png": Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for index in range(11)}
    _save_all(folder / "images", extra)
    names = sorted(p.name for p in (folder / "images").iterdir())
    _write_csv(folder / "ratings.csv", ["filename", "MOS", "description"],
               [[name, round(0.2 * index - 1.0, 3), "No."] for index, name in enumerate(names)])


#: Extra preparation of one page's working folder.
PAGE_SETUP = {"docs/training.md": add_rated_images}


# --- the loopback world: fake Hub, fake OpenAI server, no other network ------------------------

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _refuse_the_network(patch: pytest.MonkeyPatch) -> None:
    """Connections to anything but loopback fail at once, naming the address."""
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(self, address):
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise OSError(f"test_snippets: network access to {address} refused (snippets must run offline)")
        return connect(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in (None, *LOOPBACK) and not str(host).startswith("127."):
            raise OSError(f"test_snippets: name lookup of {host!r} refused (snippets must run offline)")
        return getaddrinfo(host, *args, **kwargs)

    patch.setattr(socket.socket, "connect", guarded_connect)
    patch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


def _point_hub_clients_at(patch: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    """HF_ENDPOINT/HF_HOME for realness.hub (read per call) and for huggingface_hub, which reads them at import."""
    import huggingface_hub.constants as constants
    import transformers.utils.hub

    patch.setenv("HF_ENDPOINT", endpoint)
    patch.setenv("HF_HOME", str(home))
    for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        patch.delenv(name, raising=False)
    patch.setattr(constants, "ENDPOINT", endpoint)
    patch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    patch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    patch.setattr(constants, "HF_HUB_OFFLINE", False)
    patch.setattr(transformers.utils.hub, "_hf_api", None)  # a shared client made with the import-time endpoint


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


class World:
    """The module's loopback servers, tiny models, environment and the pages' working folders.

    Attributes:
        root: the module's tmp folder; pages work in ``root/pages/<page>``.
        template: the folder every page's working folder starts as a copy of.
        values: what :data:`SUBSTITUTIONS` replacements are formatted with.
        tiny_encoders: the tiny image and text encoder folders ``realness train`` uses here.
    """

    def __init__(self, root: Path, template: Path, values: dict[str, str], tiny_encoders: tuple[Path, Path]):
        self.root = root
        self.template = template
        self.values = values
        self.tiny_encoders = tiny_encoders
        self.pages: dict[str, Page] = {}
        self.ray_started = False

    def page(self, name: str) -> Page:
        if name not in self.pages:
            self.pages[name] = Page(self, name)
        return self.pages[name]

    def ensure_ray(self) -> None:
        """The local Ray that stands in for ``ray start``, started by realness' own ``connect`` (which forwards the env)."""
        import ray

        from realness.distributed.cluster import connect

        if not ray.is_initialized():
            connect(num_cpus=2)
            self.ray_started = True


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_image_encoder_dir, tiny_text_encoder_dir):
    from fake_hub import FakeHub
    from fake_openai import FakeOpenAIServer
    from test_describers_vlm import save_tiny_llava
    from test_dream import save_tiny_clip

    root = tmp_path_factory.mktemp("snippets")
    vlm_dir = save_tiny_llava(root / "tiny-vlm")
    hub_repos = {  # the names the docs use, each serving a tiny random model of its kind
        "openai/clip-vit-base-patch32": _folder_files(save_tiny_clip(root / "tiny-clip")),  # DREAM's default CLIP
        "Qwen/Qwen2.5-VL-3B-Instruct": _folder_files(vlm_dir),  # TransformersDescriber's default VLM
        "HuggingFaceTB/SmolVLM-Instruct": _folder_files(vlm_dir),
    }
    raise_td = build_tiny_raise_td(root / "pages" / "shared" / "datasets" / "raise-td")  # a page's ../shared/datasets/raise-td
    template = build_template(root / "template")
    (template / "raise-td").symlink_to(raise_td, target_is_directory=True)
    with FakeHub(hub_repos) as hub, FakeOpenAIServer() as openai_server, pytest.MonkeyPatch.context() as patch:
        _refuse_the_network(patch)
        _point_hub_clients_at(patch, hub.endpoint, root / "hf-home")
        patch.setenv("OPENAI_API_KEY", "sk-snippets-test")  # the fake server ignores it
        patch.setenv("OPENAI_BASE_URL", openai_server.base_url)  # read by the openai SDK when no base_url is given
        patch.setenv("REALNESS_CACHE_DIR", str(root / "realness-cache"))  # not the user's description cache
        patch.delenv("REALNESS_RAISE_TD", raising=False)
        patch.setenv("MPLBACKEND", "Agg")
        world = World(root, template, {"openai_url": openai_server.base_url, "vlm_dir": str(vlm_dir)},
                      (tiny_image_encoder_dir, tiny_text_encoder_dir))
        yield world
        if world.ray_started:
            import ray

            ray.shutdown()


# --- running a page -------------------------------------------------------------------------------


class SnippetFailed(AssertionError):
    pass


class Page:
    """One page's working folder and namespace; its blocks run once each, in order."""

    def __init__(self, world: World, name: str):
        self.world = world
        self.name = name
        self.dir = world.root / "pages" / re.sub(r"[^\w]+", "-", name)
        shutil.copytree(world.template, self.dir, symlinks=True)
        if name in PAGE_SETUP:
            PAGE_SETUP[name](self.dir)
        self.namespace: dict = {"__name__": "__snippets__"}
        self.snippets = [s for s in doc_snippets() if s.page == name]
        self.ran: dict[int, BaseException | None] = {}
        self.values = {**world.values, "workdir": str(self.dir)}
        if name in READERS_OBJECTS:
            exec(compile(READERS_OBJECTS[name], f"<{name}: the reader's objects>", "exec"), self.namespace)

    def run_through(self, snippet: Snippet) -> None:
        """Run the blocks before ``snippet`` that have not run, then ``snippet``; raise its failure."""
        for earlier in self.snippets[: snippet.index]:
            if earlier.index not in self.ran:
                self._run_once(earlier)
        failed = [s.id for s in self.snippets[: snippet.index] if isinstance(self.ran.get(s.index), BaseException)]
        if failed:
            raise SnippetFailed(f"{snippet.id}: not run, an earlier block of the page failed: {', '.join(failed)}")
        self._run_once(snippet)
        if self.ran[snippet.index] is not None:
            raise self.ran[snippet.index]

    def _run_once(self, snippet: Snippet) -> None:
        self.ran[snippet.index] = None
        if snippet.not_run or snippet.language == "text":
            return
        try:
            with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
                patch.chdir(self.dir)
                code = self.substituted(snippet)
                if "--engine ray" in code or "import ray" in code:
                    self.world.ensure_ray()
                if snippet.language == "python":
                    self.run_python(snippet, code)
                elif snippet.language in SHELL:
                    for command in shell_commands(snippet, code):
                        self.run_command(snippet, command, patch)
                elif snippet.language == "yaml":
                    check_yaml(snippet, code)
                elif snippet.language == "ini":
                    configparser.ConfigParser().read_string(code)
                else:
                    raise SnippetFailed(f"{snippet.id} (line {snippet.line}): unknown block language {snippet.language!r}")
        except (Exception, SystemExit) as error:  # kept, and raised by the test of this block
            self.ran[snippet.index] = error

    def substituted(self, snippet: Snippet) -> str:
        code = snippet.code
        rules = SUBSTITUTIONS + (CUDA_SUBSTITUTIONS if not torch.cuda.is_available() else [])
        for page, text, replacement, _why in rules:
            if page == snippet.page and text in code:
                code = code.replace(text, replacement.format(**self.values))
        return code

    def run_python(self, snippet: Snippet, code: str) -> None:
        filename = f"<{snippet.id}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)  # tracebacks show the lines
        exec(compile(code, filename, "exec"), self.namespace)

    def run_command(self, snippet: Snippet, argv: list[str], patch: pytest.MonkeyPatch) -> None:
        line = shlex.join(argv)
        where = f"{snippet.id} (line {snippet.line}): `{line}`"
        if line in NOT_RUN_LINES:
            return
        program, args = argv[0], argv[1:]
        if program == "export":
            for assignment in args:
                name, _, value = assignment.partition("=")
                patch.setenv(name, value)
        elif program == "pip" and args[:1] == ["install"]:
            check_pip_install(where, args[1:])
        elif program == "realness":
            status, output = run_cli(args, self.world)
            if status != 0:
                raise SnippetFailed(f"{where} exited {status}:\n{output[-3000:]}")
        elif program in ("python", "python3") and args[:1] == ["-c"]:
            exec(compile(args[1], f"<{snippet.id}: python -c>", "exec"), {"__name__": "__main__"})
        elif program in ("python", "python3") and args and args[0].endswith(".py"):
            status = run_script(args[0], args[1:], patch)
            if status not in (None, 0):
                raise SnippetFailed(f"{where} exited {status}")
        elif program == "pytest":
            status = self.run_pytest(args)
            if status != 0:
                raise SnippetFailed(f"{where} exited {status}")
        else:
            raise SnippetFailed(f"{where}: a kind of line this test does not know; run it here or add it to NOT_RUN_LINES")

    def write_pytest_project(self) -> None:
        """The page's test functions (with the reader's objects) as ``tests/test_gen.py``, its ini blocks as ``pytest.ini``."""
        tests = [s.code for s in self.snippets if s.language == "python" and any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("test_") for node in ast.parse(s.code).body)]
        (self.dir / "tests").mkdir(exist_ok=True)
        (self.dir / "tests" / "test_gen.py").write_text("\n\n".join([READERS_OBJECTS.get(self.name, ""), *tests]))
        (self.dir / "pytest.ini").write_text("\n".join(s.code for s in self.snippets if s.language == "ini") or "[pytest]\n")

    def run_pytest(self, args: list[str]) -> int:
        self.write_pytest_project()
        sys.modules.pop("test_gen", None)
        try:
            return int(pytest.main(args))
        finally:
            sys.modules.pop("test_gen", None)


def run_cli(args: list[str], world: World) -> tuple[int, str]:
    """``realness ARGS`` in this process: the exit status and what it printed."""
    from realness.cli import main

    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        if args[:1] == ["train"]:
            train_over_tiny_encoders(patch, *world.tiny_encoders)
        status = main(list(args))
    return status, output.getvalue()


def train_over_tiny_encoders(patch: pytest.MonkeyPatch, image_dir: Path, text_dir: Path) -> None:
    """``realness train``'s shipped recipe (head, views, degradations), over conftest.py's tiny random encoders.

    EfficientNet-Lite0 + MiniLM take about 5 s per training image on this CPU (views times
    degraded copies); the bundled model itself is what every other snippet scores with.
    """
    from realness.core import CoreConfig, ImageEncoderConfig, TextEncoderConfig

    lite = CoreConfig.lite

    def tiny_lite(cls):
        config = lite()
        config.image_encoder = ImageEncoderConfig(family="transformers", name=str(image_dir), input_size=32, min_size=8)
        config.text_encoder = TextEncoderConfig(family="transformers", name=str(text_dir), pooling="cls")
        return config

    patch.setattr(CoreConfig, "lite", classmethod(tiny_lite))


def run_script(script: str, args: list[str], patch: pytest.MonkeyPatch) -> int | str | None:
    """``python SCRIPT ARGS`` in this process; its exit status (None when it just returned)."""
    patch.setattr(sys, "argv", [script, *args])
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        return exit_.code
    return None


def check_pip_install(where: str, args: list[str]) -> None:
    """What ``pip install ARGS`` names is this project (with existing extras) or a dependency at an allowed version."""
    import tomllib
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    dependencies = {Requirement(text).name: Requirement(text) for text in project["dependencies"]}
    for arg in args:
        if arg in ("-e", "--editable"):
            continue
        assert not arg.startswith("-"), f"{where}: unknown pip option {arg}"
        local = re.fullmatch(r"\.(?:\[(?P<extras>[\w,-]+)\])?", arg)
        requirement = None if local else Requirement(arg)
        if local or requirement.name == project["name"]:
            named = (local.group("extras") if local else ",".join(requirement.extras)) or ""
            missing = {extra for extra in named.split(",") if extra} - extras
            assert not missing, f"{where}: extras {sorted(missing)} are not in pyproject's [project.optional-dependencies]"
        else:
            assert requirement.name in dependencies, f"{where}: {requirement.name} is not a dependency of {project['name']}"
            for spec in requirement.specifier:
                assert dependencies[requirement.name].specifier.contains(spec.version), (
                    f"{where}: {arg} is outside the project's {dependencies[requirement.name]}")


def check_yaml(snippet: Snippet, code: str) -> None:
    """A RayJob manifest parses, and its entrypoint is a command the CLI's parser accepts."""
    import yaml

    from realness.cli import build_parser

    document = yaml.safe_load(code)
    entrypoint = shlex.split(document["spec"]["entrypoint"])
    assert entrypoint[0] == "realness", f"{snippet.id}: the entrypoint is not a realness command"
    build_parser().parse_args(entrypoint[1:])


# --- the tests ------------------------------------------------------------------------------------

RUN = [s for s in doc_snippets() if s.language not in ("text",) and s.not_run is None]


@pytest.mark.parametrize("snippet", RUN, ids=[s.id for s in RUN])
def test_snippet_runs(snippet, world):
    world.page(snippet.page).run_through(snippet)


def test_nothing_but_loopback_is_reachable_while_snippets_run(world):
    with pytest.raises(OSError, match="refused"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never a real host
    with pytest.raises(OSError, match="refused"):
        socket.getaddrinfo("example.invalid", 443)


def test_every_block_has_a_known_language_and_the_exceptions_are_the_listed_ones():
    snippets = doc_snippets()
    assert {s.id: s.language for s in snippets if s.language not in ("python", *SHELL, *NOT_CODE)} == {}
    assert {s.id for s in snippets if s.not_run} == NOT_RUN_BLOCKS
    listed = {shlex.join(c) for s in snippets if s.language in SHELL and not s.not_run for c in shell_commands(s)}
    assert set(NOT_RUN_LINES) <= listed, f"NOT_RUN_LINES names lines no page has: {set(NOT_RUN_LINES) - listed}"


def test_every_substitution_still_matches_a_snippet():
    by_page = {}
    for s in doc_snippets():
        by_page[s.page] = by_page.get(s.page, "") + s.code
    rules = SUBSTITUTIONS + CUDA_SUBSTITUTIONS
    assert [(page, text) for page, text, _, _ in rules if text not in by_page.get(page, "")] == []


# The docs teach only the new spellings (the old ones still work, with a deprecation warning):
# running a snippet turns that warning into an error; this static check also covers blocks not run.
DEPRECATED_KEYWORDS = {"description", "dtype", "chunk_size"}
OLD_CLI_SPELLINGS = re.compile(r"--chunk-size|--describer\s+\"?(transformers|https?://)")


def test_snippets_use_no_deprecated_spelling():
    problems = []
    for snippet in doc_snippets():
        if snippet.language == "python":
            for node in ast.walk(ast.parse(snippet.code, snippet.id)):
                if isinstance(node, ast.Call):
                    problems += [f"{snippet.id}: {kw.arg}= in {ast.unparse(node)[:60]}" for kw in node.keywords
                                 if kw.arg in DEPRECATED_KEYWORDS]
        elif OLD_CLI_SPELLINGS.search(snippet.code):
            problems.append(f"{snippet.id}: an old CLI spelling in {snippet.code[:60]!r}")
    assert problems == []
