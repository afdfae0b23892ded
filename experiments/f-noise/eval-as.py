#!/usr/bin/python3
# Re-evaluate a noise(F)-trained checkpoint through another forward (F itself, as UNIQ deploys a
# noise-trained model, or fp32), to separate what the noise costs at evaluation from what it cost
# in training. Copies the checkpoint, rewrites its stored formats, runs `qat eval` on the copy.
# Usage: experiments/f-noise/eval-as.py CKPT.h5 FORMAT [QAT]   (needs Debian's python3-h5py)
import os, shutil, subprocess, sys, tempfile
import h5py

ckpt, fmt = sys.argv[1], sys.argv[2]
qat = sys.argv[3] if len(sys.argv) > 3 else "build/cli/qat"
with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "ckpt.h5")
    shutil.copy(ckpt, copy)
    with h5py.File(copy, "r+") as f:
        old = f.attrs["weight_format"]
        old = old.decode() if isinstance(old, bytes) else str(old)
        cfg = f.attrs["config"]
        cfg = cfg.decode() if isinstance(cfg, bytes) else str(cfg)
        f.attrs["config"] = cfg.replace('"%s"' % old, '"%s"' % fmt)   # both sides' format lines
        f.attrs["weight_format"] = fmt
        f.attrs["act_format"] = fmt
    subprocess.run([qat, "eval", "--checkpoint", copy, "--json"], check=True)
