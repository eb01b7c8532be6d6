# Setup: run this cell first. On Google Colab it installs the suite (Colab's own torch is kept);
# on your own machine it installs nothing.
PROFILE = "full"  # "classroom": real weights, smaller settings (CPU-friendly); "tiny": random models, MEANINGLESS
USE_DRIVE_CACHE = False  # Colab only: True keeps downloaded weights on your Google Drive for later sessions

import os, subprocess, sys

REPO_URL = os.environ.get("RS_HELPERS_REPO_URL", "{{REPO_URL}}")
SUITE_REF = "{{SUITE_REF}}"  # the branch the "Open in Colab" badge opens: notebook and package agree
if "_OUTER_PROFILE" not in globals():  # once per kernel: a profile set outside (CI, make) wins
    _OUTER_PROFILE = os.environ.get("RS_HELPERS_PROFILE")
os.environ["RS_HELPERS_PROFILE"] = _OUTER_PROFILE or PROFILE

if "google.colab" in sys.modules:
    COLAB_ROOT = os.environ.get("RS_HELPERS_COLAB_ROOT", "/content")
    SUITE_DIR = os.path.join(COLAB_ROOT, "rs-text-seg")

    def _run(step, command, fix):  # a failed step stops the cell with its own error message
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-12:])
            raise RuntimeError(f"Setup stopped: {step} failed (exit code {done.returncode}). {fix}\n{tail}")

    if USE_DRIVE_CACHE:  # before anything reads the cache folders
        from google.colab import drive

        drive.mount(os.path.join(COLAB_ROOT, "drive"))
        cache = os.path.join(COLAB_ROOT, "drive", "MyDrive", "rs-text-seg-cache")
        os.environ["RS_HELPERS_CACHE"] = os.path.join(cache, "rs_helpers")  # SAM and CLIP weights
        os.environ["HF_HOME"] = os.path.join(cache, "huggingface")  # Qwen-VL and other Hugging Face files
        for folder in (os.environ["RS_HELPERS_CACHE"], os.environ["HF_HOME"]):
            os.makedirs(folder, exist_ok=True)
        print("weights are cached on your Drive in", cache)
        if "huggingface_hub" in sys.modules:
            print("HF_HOME was set after huggingface_hub was imported:",
                  "Runtime > Restart session, then run this cell again.")
    if not os.path.isdir(os.path.join(SUITE_DIR, ".git")):
        print(f"cloning {REPO_URL} ({SUITE_REF}) ...")
        _run(f"cloning {REPO_URL} at {SUITE_REF!r}",
             ["git", "clone", "--quiet", "--depth", "1", "--branch", SUITE_REF, REPO_URL, SUITE_DIR],
             f"Check the network and the address; delete {SUITE_DIR} if it is there, then run this cell again.")
    from importlib import metadata

    keep = []  # pin the preinstalled torch packages so that pip never replaces them
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            keep.append(f"{name}=={metadata.version(name)}\n")
        except metadata.PackageNotFoundError:
            pass
    constraints = os.path.join(COLAB_ROOT, "keep-preinstalled.txt")
    with open(constraints, "w") as f:
        f.writelines(keep)
    print("installing the suite with pip ...")
    _run(f"installing the suite from {SUITE_DIR}",
         [sys.executable, "-m", "pip", "install", "--quiet", "-e", SUITE_DIR, "-c", constraints],
         "pip's last lines are below; Runtime > Restart session, then run this cell again.")
    if SUITE_DIR not in sys.path:
        sys.path.insert(0, SUITE_DIR)  # the editable install is seen by new kernels only
    os.chdir(os.path.join(SUITE_DIR, "notebooks"))
    if os.environ["RS_HELPERS_PROFILE"] in ("full", "classroom"):
        import torch

        if not torch.cuda.is_available():
            print("No GPU: pick one under Runtime > Change runtime type (e.g. T4 GPU), then run this cell again",
                  "(or keep the CPU with PROFILE = 'classroom': each notebook's header says how long it takes).")
        sam = "SAM ViT-L 1.2 GB" if os.environ["RS_HELPERS_PROFILE"] == "full" else "SAM ViT-B 0.4 GB"
        print(f"The first run downloads the weights once: {sam} and CLIP ViT-B/16 0.6 GB (about 1-2 min),",
              "Qwen3-VL-2B 4 GB in notebooks 06 and 08 and SAM 3 about 3.4 GB in notebook 10 (gated: accept its licence",
              "first; about 2-4 min each); estimates, at Colab's usual speeds.")
        if not USE_DRIVE_CACHE:
            print("They are lost with the runtime; set USE_DRIVE_CACHE = True to keep them on your Drive.")
