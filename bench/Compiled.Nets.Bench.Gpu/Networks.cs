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

/// <summary>One bert-base encoder layer (hidden 768, 12 heads, intermediate 3072) over token ids: word and position
/// embeddings with their LayerNorm before it, a classifier on [CLS] after it (the layer's cost dominates).</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 128), CrossEntropyLoss]
public partial class BertLayer
{
    [Embedding(1000, 768)] public partial Embedding Words { get; }
    [PositionEmbedding(512, 768)] public partial PositionEmbedding Positions { get; }
    [LayerNorm(768, eps: 1e-12)] public partial LayerNorm EmbeddingNorm { get; }
    [SelfAttention(768, heads: 12)] public partial SelfAttention Attention { get; }
    [Linear(768, 768)] public partial Linear AttentionOut { get; }
    [LayerNorm(768, eps: 1e-12)] public partial LayerNorm AttentionNorm { get; }
    [Linear(768, 3072)] public partial Linear Intermediate { get; }
    [Linear(3072, 768)] public partial Linear Output { get; }
    [LayerNorm(768, eps: 1e-12)] public partial LayerNorm OutputNorm { get; }
    [Linear(768, 2)] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids)
    {
        var x = ids.Apply(Words).Apply(Positions).Apply(EmbeddingNorm);
        var a = (x.Apply(Attention).Apply(AttentionOut) + x).Apply(AttentionNorm);
        var h = (a.Apply(Intermediate).Gelu().Apply(Output) + a).Apply(OutputNorm);
        return h.SelectToken(0).Apply(Classifier);
    }
}
