using Compiled.Nets;

namespace Compiled.Nets.Samples.FashionMnist;

/// <summary>
/// The seed ConvNet. On 1×28×28 input two 2×2 poolings leave 128×7×7 features, so Linear(128 * 7 * 7, 512) is right;
/// change Input to (3, 32, 32) and the build fails with CNET0001 on that argument.
/// </summary>
[Network, Input(1, 28, 28), CrossEntropyLoss]
public partial class ConvNet
{
    [Conv2d(1, 64, kernel: 3, padding: 1)]   public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 7 * 7, 512)]               public partial Linear Fc1 { get; }
    [Linear(512, 10)]                        public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                 .Apply(Conv2).MaxPool2d(2).Relu()
                                 .Flatten().Apply(Fc1).Relu().Apply(Fc2);
}
