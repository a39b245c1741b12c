namespace Compiled.Nets.Generator.Tests;

/// <summary>The seed bug as the tests meet it: the CIFAR ConvNet wired with 128 * 7 * 7 for 32×32 input.</summary>
internal static class SeedNetworks
{
    public const string CifarSeedBug = """
        using Compiled.Nets;
        [Network, Input(3, 32, 32), CrossEntropyLoss]
        public partial class CifarNet
        {
            [Conv2d(3, 64, kernel: 3, padding: 1)]   public partial Conv2d Conv1 { get; }
            [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
            [Linear(128 * 7 * 7, 512)]               public partial Linear Fc1 { get; }
            [Linear(512, 10)]                        public partial Linear Fc2 { get; }

            Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                         .Apply(Conv2).MaxPool2d(2).Relu()
                                         .Flatten().Apply(Fc1).Relu().Apply(Fc2);
        }
        """;

    /// <summary>The same source with the CNET0001 markup the diagnostic harness reads.</summary>
    public static string CifarSeedBugMarkup => CifarSeedBug.Replace("[Linear(128 * 7 * 7, 512)]", "[Linear({|CNET0001:128 * 7 * 7|}, 512)]");
}
