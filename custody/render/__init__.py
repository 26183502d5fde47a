"""Renderings of the findings: each module writes one kind of file (or the terminal) from
`custody.findings`, and none imports another renderer."""
