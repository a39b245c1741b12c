using Compiled.Nets;

namespace Compiled.Nets.Samples.BertSpam;

// BertForSequenceClassification as Hugging Face lays it out (state-dict names included, so a bert-base-uncased
// checkpoint loads by name): embeddings (word + position + token type 0, LayerNorm, dropout) → encoder layers →
// pooler (tanh of a dense layer over [CLS]) → dropout → classifier. Sizes are compile-time constants, checked by
// the generator; the sequence length T is symbolic up to MaxSequence.

/// <summary>bert-base-uncased (12 layers, hidden 768, 12 heads, intermediate 3072) with a 2-class head.</summary>
/// <remarks>About 160 MiB of activations per sample at T = 128, so the workspace is sized for BERT's batch of 16.</remarks>
[Network(MaxBatch = 16), Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 128), CrossEntropyLoss]
public partial class BertBaseClassifier
{
    [Embedding(30522, 768), StateName("bert.embeddings.word_embeddings")] public partial Embedding Words { get; }
    [PositionEmbedding(512, 768), StateName("bert.embeddings.position_embeddings")] public partial PositionEmbedding Positions { get; }
    [TokenTypeEmbedding(2, 768), StateName("bert.embeddings.token_type_embeddings")] public partial TokenTypeEmbedding TokenTypes { get; }
    [LayerNorm(768, eps: 1e-12), StateName("bert.embeddings.LayerNorm")] public partial LayerNorm EmbeddingNorm { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }
    [SubNetwork(12), StateName("bert.encoder.layer")] public partial BertBaseLayer[] Layers { get; }
    [Linear(768, 768), StateName("bert.pooler.dense")] public partial Linear Pooler { get; }
    [Linear(768, 2), StateName("classifier")] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Apply(Positions).Apply(TokenTypes).Apply(EmbeddingNorm).Apply(Drop).Apply(Layers);
        return h.SelectToken(0).Apply(Pooler).Tanh().Apply(Drop).Apply(Classifier);
    }
}

/// <summary>One bert-base encoder layer (HF BertLayer).</summary>
[Network, Input(Dim.Sequence, 768)]
public partial class BertBaseLayer
{
    [SelfAttention(768, heads: 12, dropout: 0.1), StateName("attention.self")] public partial SelfAttention Attention { get; }
    [Linear(768, 768), StateName("attention.output.dense")] public partial Linear AttentionOut { get; }
    [LayerNorm(768, eps: 1e-12), StateName("attention.output.LayerNorm")] public partial LayerNorm AttentionNorm { get; }
    [Linear(768, 3072), StateName("intermediate.dense")] public partial Linear Intermediate { get; }
    [Linear(3072, 768), StateName("output.dense")] public partial Linear Output { get; }
    [LayerNorm(768, eps: 1e-12), StateName("output.LayerNorm")] public partial LayerNorm OutputNorm { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }

    Tensor Forward(Tensor x)
    {
        var a = (x.Apply(Attention).Apply(AttentionOut).Apply(Drop) + x).Apply(AttentionNorm);
        return (a.Apply(Intermediate).Gelu().Apply(Output).Apply(Drop) + a).Apply(OutputNorm);
    }
}

/// <summary>
/// BERT-Tiny's shape (2 layers, hidden 128, 2 heads, intermediate 512; Turc et al., 2019) over the same uncased
/// vocabulary: what the sample trains from scratch when no pretrained checkpoint is given.
/// </summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 128), CrossEntropyLoss]
public partial class BertTinyClassifier
{
    [Embedding(30522, 128), StateName("bert.embeddings.word_embeddings")] public partial Embedding Words { get; }
    [PositionEmbedding(512, 128), StateName("bert.embeddings.position_embeddings")] public partial PositionEmbedding Positions { get; }
    [TokenTypeEmbedding(2, 128), StateName("bert.embeddings.token_type_embeddings")] public partial TokenTypeEmbedding TokenTypes { get; }
    [LayerNorm(128, eps: 1e-12), StateName("bert.embeddings.LayerNorm")] public partial LayerNorm EmbeddingNorm { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }
    [SubNetwork(2), StateName("bert.encoder.layer")] public partial BertTinyLayer[] Layers { get; }
    [Linear(128, 128), StateName("bert.pooler.dense")] public partial Linear Pooler { get; }
    [Linear(128, 2), StateName("classifier")] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Apply(Positions).Apply(TokenTypes).Apply(EmbeddingNorm).Apply(Drop).Apply(Layers);
        return h.SelectToken(0).Apply(Pooler).Tanh().Apply(Drop).Apply(Classifier);
    }
}

/// <summary>One BERT-Tiny encoder layer.</summary>
[Network, Input(Dim.Sequence, 128)]
public partial class BertTinyLayer
{
    [SelfAttention(128, heads: 2, dropout: 0.1), StateName("attention.self")] public partial SelfAttention Attention { get; }
    [Linear(128, 128), StateName("attention.output.dense")] public partial Linear AttentionOut { get; }
    [LayerNorm(128, eps: 1e-12), StateName("attention.output.LayerNorm")] public partial LayerNorm AttentionNorm { get; }
    [Linear(128, 512), StateName("intermediate.dense")] public partial Linear Intermediate { get; }
    [Linear(512, 128), StateName("output.dense")] public partial Linear Output { get; }
    [LayerNorm(128, eps: 1e-12), StateName("output.LayerNorm")] public partial LayerNorm OutputNorm { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }

    Tensor Forward(Tensor x)
    {
        var a = (x.Apply(Attention).Apply(AttentionOut).Apply(Drop) + x).Apply(AttentionNorm);
        return (a.Apply(Intermediate).Gelu().Apply(Output).Apply(Drop) + a).Apply(OutputNorm);
    }
}
