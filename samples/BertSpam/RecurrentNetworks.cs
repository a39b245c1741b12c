using Compiled.Nets;

namespace Compiled.Nets.Samples.BertSpam;

// Recurrent baselines over the same WordPiece ids and attention mask as the BERT models: an embedding, one
// bidirectional layer whose padded positions keep the state (PyTorch's packed sequences), the mean over the real
// positions, dropout and a 2-class head.

/// <summary>WordPiece embeddings → bidirectional LSTM (64 per direction) → masked mean → classifier.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 128), CrossEntropyLoss]
public partial class LstmSpamClassifier
{
    [Embedding(30522, 64)] public partial Embedding Words { get; }
    [LSTM(64, 64, bidirectional: true)] public partial LSTM Rnn { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }
    [Linear(128, 2)] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Rnn).MeanOverSequence().Apply(Drop).Apply(Classifier);
}

/// <summary>WordPiece embeddings → bidirectional GRU (64 per direction) → masked mean → classifier.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 128), CrossEntropyLoss]
public partial class GruSpamClassifier
{
    [Embedding(30522, 64)] public partial Embedding Words { get; }
    [GRU(64, 64, bidirectional: true)] public partial GRU Rnn { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }
    [Linear(128, 2)] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Rnn).MeanOverSequence().Apply(Drop).Apply(Classifier);
}
