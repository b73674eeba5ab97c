"""``cnnzoo.scratch`` never imports torch, directly or transitively (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CODE = textwrap.dedent("""
    import sys
    import numpy as np
    import cnnzoo.scratch
    from cnnzoo.scratch import SGD, blas, cli, conv_reference, explain, interop, ops, parallel, train
    for name in ("lenet5", "lenet5_relu"):
        net = cnnzoo.scratch.create_net(name, seed=0)
        opt = SGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4)
        x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
        loss, cache = ops.softmax_cross_entropy(net(x), np.array([0, 1, 2, 3]))
        net.backward(ops.softmax_cross_entropy_backward(cache))
        opt.step()
        assert np.isfinite(loss)
    explain.conv_example()
    runner = parallel.DataParallel(cnnzoo.scratch.lenet5_relu(), 2, 2)
    runner.step(np.zeros((5, 1, 32, 32), np.float32), np.arange(5))
    runner.close()
    from cnnzoo.data import load_arrays
    bad = [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
    assert not bad, bad[:5]
    print("ok")
""")


def test_scratch_engine_runs_without_torch():
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
