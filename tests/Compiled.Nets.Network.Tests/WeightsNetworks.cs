using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

/// <summary>A network whose weights file the build checks ([Weights], an AdditionalFiles item of this project).</summary>
[Network, Input(4), MSELoss, Weights("Fixtures/weights/tiny-mlp.safetensors")]
public partial class WeightsMlp
{
    [Linear(4, 3)] public partial Linear Fc1 { get; }
    [Linear(3, 2)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc1).Relu().Apply(Fc2);
}
