"""Post-hoc compaction of any trained scene by self-distillation (``splatpack compress IN OUT.spk``).

No training images needed: the original scene is rendered from virtual cameras around (and inside) its bounds
or from the user's cameras, and a compact scene — OMG's pruning, then attributes and sub-vector codebooks fitted
to those renders — is what the ``.spk`` file stores.

- ``rig``: the scene's robust extent and the virtual camera rigs (orbit, inside), fitted and held-out views;
- ``fit``: targets, importance + LD pruning, fitting, quantization, codebook fitting (``distill``);
- ``report``: the decoded file scored against the original on held-out views and a PNG of original /
  compressed renders side by side (``compress_scene``: distillation, file and report; ``--target-psnr``);
- ``options`` / ``run``: what ``splatpack compress IN OUT.spk`` takes and runs (views, device, report JSON).
"""
