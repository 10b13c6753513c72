"""The generalized framework of AutoRec and NCF (GF): one model built from input, representation, fusion,
prediction and loss modules; the NCF family (GMF, MLP, CFNet, DMF, ONCF) and AutoRec as its presets."""
