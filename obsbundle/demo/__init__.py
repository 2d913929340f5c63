"""`obsbundle demo`: the bundle's whole loop on one machine (`stack.run`), from seeded incidents
to the notifications an on-call would get."""
