using Compiled.Nets;

namespace Compiled.Nets.Samples.FashionMnist;

/// <summary>A ResNet basic block (two 3×3 convolutions with batch norm and an identity shortcut); its width is an argument.</summary>
[Network]
public partial class BasicBlock
{
    private const int Width = BlockArg.A;

    [Conv2d(Width, Width, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv1 { get; }
    [BatchNorm2d(Width)]                                       public partial BatchNorm2d Bn1 { get; }
    [Conv2d(Width, Width, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv2 { get; }
    [BatchNorm2d(Width)]                                       public partial BatchNorm2d Bn2 { get; }

    Tensor Forward(Tensor x) => (x.Apply(Conv1).Apply(Bn1).Relu().Apply(Conv2).Apply(Bn2) + x).Relu();
}

/// <summary>The down-sampling block: stride 2, more channels, a 1×1 projection on the shortcut; widths are arguments.</summary>
[Network]
public partial class DownBlock
{
    private const int In = BlockArg.A, Out = BlockArg.B;

    [Conv2d(In, Out, kernel: 3, stride: 2, padding: 1, bias: false)] public partial Conv2d Conv1 { get; }
    [BatchNorm2d(Out)]                                                public partial BatchNorm2d Bn1 { get; }
    [Conv2d(Out, Out, kernel: 3, padding: 1, bias: false)]           public partial Conv2d Conv2 { get; }
    [BatchNorm2d(Out)]                                                public partial BatchNorm2d Bn2 { get; }
    [Conv2d(In, Out, kernel: 1, stride: 2, bias: false)]             public partial Conv2d Shortcut { get; }
    [BatchNorm2d(Out)]                                                public partial BatchNorm2d ShortcutBn { get; }

    Tensor Forward(Tensor x) => (x.Apply(Conv1).Apply(Bn1).Relu().Apply(Conv2).Apply(Bn2) + x.Apply(Shortcut).Apply(ShortcutBn)).Relu();
}

/// <summary>
/// A small ResNet for 28×28 images: a 16-channel stem, one block per width 16 → 32 → 64 (28×28, 14×14, 7×7), global
/// average pooling and a linear classifier. Two block classes serve every stage through their arguments.
/// </summary>
[Network, Input(1, 28, 28), CrossEntropyLoss]
public partial class ResNet
{
    [Conv2d(1, 16, kernel: 3, padding: 1, bias: false)] public partial Conv2d Stem { get; }
    [BatchNorm2d(16)]                                  public partial BatchNorm2d StemBn { get; }
    [SubNetwork(Args = new[] { 16 })]                  public partial BasicBlock Stage1 { get; }
    [SubNetwork(Args = new[] { 16, 32 })]              public partial DownBlock Stage2 { get; }
    [SubNetwork(Args = new[] { 32, 64 })]              public partial DownBlock Stage3 { get; }
    [Linear(64, 10)]                                   public partial Linear Fc { get; }

    Tensor Forward(Tensor x) => x.Apply(Stem).Apply(StemBn).Relu()
                                 .Apply(Stage1).Apply(Stage2).Apply(Stage3)
                                 .AdaptiveAvgPool2d(1).Flatten().Apply(Fc);
}
