"""LLaMA and RoBERTa probes: real transformer models trained through the shared optimizer core, offline.

Modules (one idea each; transformers is imported only here, and lazily):

* ``probes.models``      LLaMA (tiny, 9m ... 7b) and RoBERTa (tiny, small, base) from config, random init, meta device;
                         ``SELECTIONS`` / ``selection_groups``: which matrices are low-rank.
* ``probes.data``        byte tokenizer, ``pydoc_data.topics`` corpus, packing, ``BatchOrder``, topic classification,
                         users' text / C4 JSONL(.gz) / GLUE TSV / local tokenizer folders.
* ``probes.memory``      exact parameter + optimizer-state memory on the meta device vs the papers' columns.
* ``probes.instruments`` spectra, stable rank, kappas, Newton–Schulz error, principal angles, state bytes.
* ``probes.checkpoint``  atomic, ``weights_only``-loadable checkpoints.
* ``probes.train``       ``ProbeConfig`` and ``train``: the loop (DDP under torchrun, resume, non-finite stop).
* ``probes.cli``         ``add_arguments`` / ``main`` for ``sublab probe`` (also ``python -m probes``).

See ``probes/README.md`` for the commands.
"""
