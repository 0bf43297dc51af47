"""Models: the paper's convnet (registered in timm) and the multi-task wrapper."""
