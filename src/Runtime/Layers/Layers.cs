namespace Compiled.Nets;

// Layer handles: what a network's partial layer properties return. Each binds to named tensors of a ParameterStore
// (weights live there, not here) and runs eagerly for the reference path.
public sealed class Conv2d : ILayer
{
    public Conv2d(ParameterStore store, string name, int inChannels, int outChannels, int kernel, int stride, int padding, int dilation, bool bias) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class Linear : ILayer
{
    public Linear(ParameterStore store, string name, int inFeatures, int outFeatures, bool bias) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class BatchNorm2d : ILayer
{
    public BatchNorm2d(ParameterStore store, string name, int features, float eps, float momentum) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class LayerNorm : ILayer
{
    public LayerNorm(ParameterStore store, string name, int features, float eps) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class Embedding : ILayer
{
    public Embedding(ParameterStore store, string name, int count, int dim) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class MaxPool2d : ILayer
{
    public MaxPool2d(int kernel, int stride, int padding) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class AvgPool2d : ILayer
{
    public AvgPool2d(int kernel, int stride, int padding) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class Dropout : ILayer
{
    public Dropout(double p) => throw new NotImplementedException();
    public Tensor Forward(Tensor x) => throw new NotImplementedException();
}
public sealed class ReLU : ILayer { public Tensor Forward(Tensor x) => x.Relu(); }
public sealed class GELU : ILayer { public Tensor Forward(Tensor x) => x.Gelu(); }
public sealed class Tanh : ILayer { public Tensor Forward(Tensor x) => x.Tanh(); }
public sealed class Sigmoid : ILayer { public Tensor Forward(Tensor x) => x.Sigmoid(); }
public sealed class Flatten : ILayer { public Tensor Forward(Tensor x) => x.Flatten(); }
