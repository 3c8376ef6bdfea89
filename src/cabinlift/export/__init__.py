"""A trained lifter as one file a car can run: ONNX or TorchScript with its input/output
contract in the file's metadata (:mod:`.contract`), the graph that holds the lifter and its
output unit (:mod:`.graph`), loading such a file back (:mod:`.runtime`), and the model card
written beside it (:mod:`.card`)."""
