"""recipe-keras: Karpathy's recipe for training neural networks, as Keras 3 tools."""
