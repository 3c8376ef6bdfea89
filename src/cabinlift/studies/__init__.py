"""Studies: named sets of DVC experiments that vary one thing beyond the paper's protocol
(:mod:`.definition`), queued as experiments (:mod:`.queue`) and compared in one report without
re-running anything (:mod:`.report`)."""
