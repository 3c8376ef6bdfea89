"""Training: the ``pretrain`` and ``finetune`` stages (:mod:`.stages`), which plan their runs
(:mod:`.plan`), run them as units of work (:mod:`.units`) and write their outputs
(:mod:`.outputs`); the paper's recipe (:mod:`.recipe`) and how pre-trained runs are
fine-tuned (:mod:`.finetuning`), run by an engine that trains the runs of
a setting together as one vectorised model (:mod:`.engine`, :mod:`.optim`); the tensors it reads
(:mod:`.data`); checkpoints (:mod:`.checkpoints`); the store of finished runs and their keys,
which lets an interrupted stage resume (:mod:`.store`); and the snapshots that let an
interrupted run resume (:mod:`.snapshot`)."""
