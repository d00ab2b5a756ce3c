"""The image's build inputs: Dockerfile pins and hardening, locked dependencies, and the static-asset layout.

The image itself is built only by .github/workflows/misp-dashboard-image.yaml: the test suite runs no container engine.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import venv_tool

from .support import IMAGE_DIR

DOCKERFILE = IMAGE_DIR / "Dockerfile"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def args() -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)


def test_hadolint_clean():
    result = subprocess.run(
        [venv_tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_exact_versions():
    froms = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert froms, "no FROM"
    for image in froms:
        # an exact patch version and its index digest (Renovate keeps the digest current)
        assert re.fullmatch(r"(python|node):\d+\.\d+\.\d+-[a-z0-9-]+@sha256:[0-9a-f]{64}", image), image
    labels = DOCKERFILE.read_text()
    final = froms[-1]
    assert f'org.opencontainers.image.base.name="docker.io/library/{final.split("@")[0]}"' in labels
    assert f'org.opencontainers.image.base.digest="{final.split("@")[1]}"' in labels
    python = {image for image in froms if image.startswith("python:")}
    assert len(python) == 1, f"all Python stages must use the same base: {python}"
    minor = re.match(r"python:(\d+\.\d+)\.", python.pop())[1]
    # the venv's site-packages path in the Dockerfile must match the base image's Python
    assert f"/opt/venv/lib/python{minor}/site-packages/" in DOCKERFILE.read_text()


def test_upstream_is_pinned_by_commit_and_version_matches():
    commit = args()["MISP_DASHBOARD_COMMIT"]
    assert HEX40.match(commit)
    version = (IMAGE_DIR / "VERSION").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{7}-[0-9]+", version), version
    assert version.split("-")[0] == commit[:7], "VERSION must start with the upstream short commit"
    assert any(
        keyword == "ADD" and "https://github.com/MISP/misp-dashboard.git#${MISP_DASHBOARD_COMMIT}" in rest
        for keyword, rest in instructions()
    )


def test_remote_files_are_pinned_and_checksummed():
    for keyword, rest in instructions():
        if keyword == "ADD" and "https://" in rest:
            url = re.search(r"https://\S+", rest)[0]
            if url.endswith(".git#${MISP_DASHBOARD_COMMIT}"):
                continue
            assert re.search(r"--checksum=sha256:[0-9a-f]{64}", rest), rest
            assert "${PUNCHCARD_COMMIT}" in url or re.search(r"/[0-9a-f]{40}/", url), url
    assert HEX40.match(args()["PUNCHCARD_COMMIT"])
    assert not [rest for keyword, rest in instructions() if keyword == "RUN" and re.search(r"\b(curl|wget)\b", rest)]


def test_runs_as_fixed_non_root_user_with_healthcheck_and_labels():
    steps = instructions()
    users = [rest for keyword, rest in steps if keyword == "USER"]
    assert users[-1] == "10001:10001"
    assert any(keyword == "HEALTHCHECK" and "dashboard_entrypoint" in rest for keyword, rest in steps)
    assert any(keyword == "ENTRYPOINT" and '"-m", "dashboard_entrypoint"' in rest for keyword, rest in steps)
    labels = " ".join(rest for keyword, rest in steps if keyword == "LABEL")
    for key in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{key}=" in labels
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    assert not [rest for keyword, rest in final if keyword == "RUN" and "chmod 777" in rest]


def test_no_secret_is_baked_in():
    for keyword, rest in instructions():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|SECRET|TOKEN|LICENSE_KEY)", rest, re.IGNORECASE), rest


def test_python_dependencies_are_installed_by_hash_only():
    pip = [rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest]
    assert len(pip) == 1
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", "-r /tmp/requirements.txt"):
        assert flag in pip[0]


def test_requirements_are_locked_with_hashes():
    locked = {}
    text = (IMAGE_DIR / "requirements.txt").read_text()
    for block in re.split(r"\n(?=[a-z0-9])", text):
        head = block.split("\\")[0].strip()
        if not head or head.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z0-9._-]+)==([\w.]+)(\s*;.*)?", head)
        assert match, f"not an exact pin: {head}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"{head} has no hash"
        locked[match[1]] = match[2]
    wanted = [
        re.split(r"[<>=;\s]", line, maxsplit=1)[0].lower()
        for line in (IMAGE_DIR / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in wanted:
        assert name in locked, f"{name} from requirements.in is not locked"
    assert "gunicorn" in locked
    assert int(locked["redis"].split(".")[0]) >= 4  # upstream's geoadd() needs redis-py 4
    assert tuple(int(p) for p in locked["flask-login"].split(".")) >= (0, 6, 3)  # Werkzeug 3


def test_npm_assets_are_exact_and_integrity_locked():
    package = json.loads((IMAGE_DIR / "assets" / "package.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}@{version} is not an exact version"
    lock = json.loads((IMAGE_DIR / "assets" / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    packages = {path: meta for path, meta in lock["packages"].items() if path}
    for name, version in package["dependencies"].items():
        assert packages[f"node_modules/{name}"]["version"] == version
    for path, meta in packages.items():
        assert meta["integrity"].startswith("sha512-"), path
        assert meta.get("resolved", "https://registry.npmjs.org/").startswith("https://registry.npmjs.org/"), path
    assert "npm ci --ignore-scripts" in DOCKERFILE.read_text()


# The static files upstream's templates load that its repository does not contain (they are downloaded by its
# install_dependencies.sh). pics/MISP.png is copied from upstream's committed logo in the Dockerfile.
TEMPLATE_NEEDS = [
    "css/dataTables.bootstrap.css",
    "css/font-awesome.min.css",
    "css/jquery-jvectormap-2.0.3.css",
    "css/jquery-ui.min.css",
    "css/leaflet.css",
    "css/punchcard.css",
    "css/sb-admin-2.css",
    "css/vis.min.css",
    "js/bootstrap3-typeahead.min.js",
    "js/dataTables.bootstrap.js",
    "js/jquery-jvectormap-2.0.3.min.js",
    "js/jquery-jvectormap-world-mill.js",
    "js/jquery-ui.min.js",
    "js/jquery.dataTables.min.js",
    "js/jquery.flot.js",
    "js/jquery.flot.pie.min.js",
    "js/jquery.flot.resize.js",
    "js/jquery.flot.time.js",
    "js/jquery.min.js",
    "js/leaflet.js",
    "js/moment.js",
    "js/punchcard.js",
    "js/vis.min.js",
    # referenced from the stylesheets above
    "fonts/fontawesome-webfont.woff2",
    "fonts/glyphicons-halflings-regular.woff2",
    "css/images/layers.png",
    "css/images/ui-icons_444444_256x240.png",
]

# Where the pinned npm packages keep those files (the layout of their published tarballs).
NPM_FILES = [
    "jquery/dist/jquery.min.js",
    "flot/jquery.flot.js",
    "flot/jquery.flot.pie.js",
    "flot/jquery.flot.resize.js",
    "flot/jquery.flot.time.js",
    "jquery-ui-dist/jquery-ui.min.js",
    "jquery-ui-dist/jquery-ui.min.css",
    "jquery-ui-dist/images/ui-icons_444444_256x240.png",
    "startbootstrap-sb-admin-2/dist/js/sb-admin-2.js",
    "startbootstrap-sb-admin-2/dist/css/sb-admin-2.css",
    "startbootstrap-sb-admin-2/vendor/font-awesome/css/font-awesome.min.css",
    "startbootstrap-sb-admin-2/vendor/font-awesome/fonts/fontawesome-webfont.woff2",
    "startbootstrap-sb-admin-2/vendor/bootstrap/fonts/glyphicons-halflings-regular.woff2",
    "leaflet/dist/leaflet.js",
    "leaflet/dist/leaflet.css",
    "leaflet/dist/images/layers.png",
    "jvectormap/jquery-jvectormap.min.js",
    "jvectormap/jquery-jvectormap.css",
    "datatables.net/js/jquery.dataTables.js",
    "datatables.net-bs/css/dataTables.bootstrap.css",
    "datatables.net-bs/js/dataTables.bootstrap.js",
    "bootstrap-3-typeahead/bootstrap3-typeahead.min.js",
    "moment/moment.js",
    "vis/dist/vis.min.js",
    "vis/dist/vis.min.css",
    "vis/dist/img/network/addNodeIcon.png",
]


@pytest.fixture
def fake_npm(tmp_path):
    modules = tmp_path / "node_modules"
    for relative in NPM_FILES:
        (modules / relative).parent.mkdir(parents=True, exist_ok=True)
        (modules / relative).write_text(relative)
    world = modules / "jvectormap/tests/assets/jquery-jvectormap-world-mill-en.js"
    world.parent.mkdir(parents=True)
    world.write_text("jQuery.fn.vectorMap('addMap', 'world_mill_en',{\"paths\": {}});\n")
    punchcard = tmp_path / "punchcard"
    punchcard.mkdir()
    (punchcard / "punchcard.js").write_text("punchcard js")
    (punchcard / "punchcard.css").write_text("punchcard css")
    return modules, punchcard


def assemble(fake_npm, out):
    modules, punchcard = fake_npm
    return subprocess.run(
        ["sh", str(IMAGE_DIR / "assets" / "assemble-static.sh"), str(modules), str(punchcard), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_assemble_static_provides_what_the_templates_load(fake_npm, tmp_path):
    out = tmp_path / "static"
    result = assemble(fake_npm, out)
    assert result.returncode == 0, result.stderr
    missing = [name for name in TEMPLATE_NEEDS if not (out / name).is_file()]
    assert not missing
    # upstream's JavaScript asks for the map named 'world_mill'
    assert "'addMap', 'world_mill'," in (out / "js/jquery-jvectormap-world-mill.js").read_text()
    assert (out / "js/jquery.flot.pie.min.js").read_text() == "flot/jquery.flot.pie.js"


def test_assemble_static_fails_when_a_package_lacks_a_file(fake_npm, tmp_path):
    modules, _ = fake_npm
    (modules / "leaflet/dist/leaflet.js").unlink()
    assert assemble(fake_npm, tmp_path / "static").returncode != 0


def test_assemble_static_is_shellcheck_clean():
    result = subprocess.run(
        [venv_tool("shellcheck"), str(IMAGE_DIR / "assets" / "assemble-static.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
