using Compiled.Nets;

namespace Compiled.Nets.Bench;

/// <summary>The seed ConvNet (Fashion-MNIST shapes), compiled by the generator for the benchmarks.</summary>
[Network, Input(1, 28, 28), CrossEntropyLoss]
public partial class ConvNetCompiled
{
    [Conv2d(1, 64, kernel: 3, padding: 1)]   public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 7 * 7, 512)]               public partial Linear Fc1 { get; }
    [Linear(512, 10)]                        public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                 .Apply(Conv2).MaxPool2d(2).Relu()
                                 .Flatten().Apply(Fc1).Relu().Apply(Fc2);
}

/// <summary>The same ConvNet on 3×32×32 (CIFAR-10) images: the flattened size is 128·8·8, not the write-up's 128·7·7.</summary>
[Network, Input(3, 32, 32), CrossEntropyLoss]
public partial class CifarConvNetCompiled
{
    [Conv2d(3, 64, kernel: 3, padding: 1)]   public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 8 * 8, 512)]               public partial Linear Fc1 { get; }
    [Linear(512, 10)]                        public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                 .Apply(Conv2).MaxPool2d(2).Relu()
                                 .Flatten().Apply(Fc1).Relu().Apply(Fc2);
}
