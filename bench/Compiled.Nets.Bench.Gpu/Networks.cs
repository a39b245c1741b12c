namespace Compiled.Nets.Bench.Gpu;

/// <summary>The seed ConvNet on 1×28×28 (Fashion-MNIST).</summary>
[Network, Input(1, 28, 28), CrossEntropyLoss]
public partial class ConvNet28
{
    [Conv2d(1, 64, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 7 * 7, 512)] public partial Linear Fc1 { get; }
    [Linear(512, 10)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu().Apply(Conv2).MaxPool2d(2).Relu().Flatten().Apply(Fc1).Relu().Apply(Fc2);
}

/// <summary>The seed ConvNet on 3×32×32 (CIFAR-10), with the Linear the compiler asks for (128·8·8).</summary>
[Network, Input(3, 32, 32), CrossEntropyLoss]
public partial class ConvNet32
{
    [Conv2d(3, 64, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 8 * 8, 512)] public partial Linear Fc1 { get; }
    [Linear(512, 10)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu().Apply(Conv2).MaxPool2d(2).Relu().Flatten().Apply(Fc1).Relu().Apply(Fc2);
}
