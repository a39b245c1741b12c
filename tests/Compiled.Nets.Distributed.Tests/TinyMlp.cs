namespace Compiled.Nets.Distributed.Tests;

/// <summary>A small classifier whose device twin trains in moments on ILGPU's CPU accelerator.</summary>
[Network, Input(16), CrossEntropyLoss]
public partial class TinyMlp
{
    [Linear(16, 12)] public partial Linear Fc1 { get; }
    [Linear(12, 4)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc1).Relu().Apply(Fc2);
}
