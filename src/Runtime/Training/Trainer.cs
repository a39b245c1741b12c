using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using Compiled.Nets.Data;

namespace Compiled.Nets.Training;

/// <summary>Metrics of one epoch (accuracy over samples, not batches).</summary>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TrainAccuracy, double ValidationLoss, double ValidationAccuracy, double Seconds, double SamplesPerSecond, float LearningRate)
{
    /// <summary>Each loss's mean over the epoch's samples, unweighted, for a network with several losses
    /// (<see cref="IMultiNetwork.Losses"/> order; <see cref="TrainLoss"/> is their weighted sum); else empty.</summary>
    public IReadOnlyList<double> TrainLosses { get; init; } = [];
    /// <summary>The same over the validation samples (empty without validation or with one loss).</summary>
    public IReadOnlyList<double> ValidationLosses { get; init; } = [];
}

/// <summary>Receives training progress (the console and plots live outside the runtime, in Compiled.Nets.Reporting).</summary>
public interface ITrainingObserver
{
    /// <summary>An epoch starts.</summary>
    void EpochStarted(int epoch, int epochs, int batches) { }
    /// <summary>A batch finished: running mean loss and accuracy of the epoch so far, throughput.</summary>
    void BatchCompleted(int epoch, int batch, int batches, double loss, double accuracy, double samplesPerSecond) { }
    /// <summary>An epoch finished (after validation).</summary>
    void EpochCompleted(EpochMetrics metrics, bool improved) { }
    /// <summary>Early stopping ended training.</summary>
    void EarlyStopped(int epoch, int bestEpoch) { }
}

/// <summary>Options of <see cref="Trainer"/>.</summary>
public sealed class TrainerOptions
{
    /// <summary>Epochs to run.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Schedule applied before every step (null: keep the optimizer's rate).</summary>
    public LearningRateSchedule? Schedule { get; init; }
    /// <summary>Clip the global gradient norm to this (0: no clipping).</summary>
    public float MaxGradNorm { get; init; }
    /// <summary>Stop after this many epochs without a better validation loss (0: never).</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Restore the parameters of the best validation epoch at the end.</summary>
    public bool RestoreBest { get; init; } = true;
    /// <summary>Folder for <c>last.safetensors</c>, <c>best.safetensors</c> and the metrics (null: none).</summary>
    public string? OutputDirectory { get; init; }
    /// <summary>Resume from <c>last.safetensors</c> in <see cref="OutputDirectory"/> when present.</summary>
    public bool Resume { get; init; }
    /// <summary>
    /// Micro-batches per optimizer step (gradient accumulation): the gradients of this many batches are summed, divided
    /// by their number, then clipped and applied — the step a batch this many times larger would take (exactly so for
    /// equal batches without batch norm). The schedule advances once per step. 1: a step per batch.
    /// </summary>
    public int AccumulationSteps { get; init; } = 1;
    /// <summary>
    /// Train as one rank of a data-parallel job (Compiled.Nets.Distributed's <c>DataParallel</c> over MPI): every rank
    /// starts from rank 0's weights, takes its part of each global batch of the loaders (they are split with
    /// <c>ForRank</c>), and averages the gradients before each step; the epoch's metrics are summed over the ranks, and
    /// only rank 0 reports to the observer and writes the output folder. Resuming reads <c>last.safetensors</c> on every
    /// rank, so the output folder must be one they share. Null: one process.
    /// </summary>
    public IDataParallel? DataParallel { get; init; }
}

/// <summary>
/// The training loop: epochs of compiled train steps, validation each epoch, early stopping with best-model restore,
/// atomic checkpoints every epoch and exact resume (the loader's order is a function of (seed, epoch)).
/// </summary>
public sealed class Trainer
{
    private readonly string name;
    private readonly ParameterStore store;
    private readonly object network; // the INetwork or IMultiNetwork given
    private readonly Optimizer optimizer;
    private readonly TrainerOptions options;
    private readonly ITrainingObserver _observer;

    /// <summary>A trainer for a classifier of float inputs (images, features), fed by <see cref="DataLoader"/>s.</summary>
    public Trainer(IClassifier network, Optimizer optimizer, TrainerOptions options, ITrainingObserver? observer = null)
        : this(network, network.Name, network.Parameters, optimizer, options, observer) { }

    /// <summary>A trainer for a regressor of float inputs (MSE, L1, smooth L1, BCE with logits), fed by
    /// <see cref="DataLoader"/>s over regression datasets (float targets); its accuracies are NaN.</summary>
    public Trainer(IRegressor network, Optimizer optimizer, TrainerOptions options, ITrainingObserver? observer = null)
        : this(network, network.Name, network.Parameters, optimizer, options, observer) { }

    /// <summary>A trainer for a text classifier over token ids, fed by <see cref="TextDataLoader"/>s.</summary>
    public Trainer(ISequenceClassifier network, Optimizer optimizer, TrainerOptions options, ITrainingObserver? observer = null)
        : this(network, network.Name, network.Parameters, optimizer, options, observer) { }

    /// <summary>
    /// A trainer for a network with several inputs or outputs, fed by <see cref="TensorDataLoader"/>s whose columns are
    /// named as its inputs and its losses' targets. The loss is the weighted sum of its losses (each one's mean is in
    /// <see cref="EpochMetrics.TrainLosses"/>); the accuracy is that of its first loss on class indices (NaN without one).
    /// </summary>
    public Trainer(IMultiNetwork network, Optimizer optimizer, TrainerOptions options, ITrainingObserver? observer = null)
        : this(network, network.Name, network.Parameters, optimizer, options, observer) { }

    private Trainer(object network, string name, ParameterStore store, Optimizer optimizer, TrainerOptions options, ITrainingObserver? observer)
    {
        // Only rank 0 reports: the others would print the same epochs again.
        if (options.DataParallel is { Rank: > 0 }) observer = null;
        this.network = network; this.name = name; this.store = store; this.optimizer = optimizer; this.options = options;
        _observer = observer ?? new NullObserver();
    }

    /// <summary>Metrics of every completed epoch.</summary>
    public List<EpochMetrics> History { get; } = new();
    /// <summary>The epoch with the best validation loss (1-based; 0 before any).</summary>
    public int BestEpoch { get; private set; }

    /// <summary>Trains a float-input classifier or regressor; returns the history.</summary>
    /// <exception cref="ArithmeticException">When a loss becomes NaN or infinite, naming the epoch and batch.</exception>
    /// <exception cref="InvalidOperationException">When the network takes token ids, or the loaders' datasets do not fit it
    /// (labels for a regressor, targets of another size).</exception>
    public IReadOnlyList<EpochMetrics> Fit(DataLoader train, DataLoader? validation)
    {
        if (options.DataParallel is { } dp) { train = ForRank(train, dp); validation = validation is null ? null : ForRank(validation, dp); }
        if (network is IRegressor regressor)
            return FitCore(Regression(regressor, train), validation is null ? null : Regression(regressor, validation));
        var net = network as IClassifier ?? throw new InvalidOperationException(network is IMultiNetwork
            ? $"{name} has several inputs or outputs: train it with TensorDataLoaders."
            : $"{name} takes token ids: train it with TextDataLoaders.");
        return FitCore(new ImageBatches(net, train), validation is null ? null : new ImageBatches(net, validation));
    }

    /// <summary>A loader split for this rank (one already split for it is kept).</summary>
    private static DataLoader ForRank(DataLoader data, IDataParallel dp) =>
        data.Ranks == 1 ? data.ForRank(dp.Rank, dp.Ranks)
        : data.Ranks == dp.Ranks && data.Rank == dp.Rank ? data
        : throw new InvalidOperationException($"The loader is rank {data.Rank} of {data.Ranks}, but this process is rank {dp.Rank} of {dp.Ranks}.");

    private static TextDataLoader ForRank(TextDataLoader data, IDataParallel dp) =>
        data.Ranks == 1 ? data.ForRank(dp.Rank, dp.Ranks)
        : data.Ranks == dp.Ranks && data.Rank == dp.Rank ? data
        : throw new InvalidOperationException($"The loader is rank {data.Rank} of {data.Ranks}, but this process is rank {dp.Rank} of {dp.Ranks}.");

    private static RegressionBatches Regression(IRegressor net, DataLoader data)
    {
        if (data.Dataset.Targets is null)
            throw new InvalidOperationException($"{net.Name} is a regressor: its loaders need a dataset with float targets (new Dataset(samples, targets, sampleShape, targetShape)), not class labels.");
        if (data.Dataset.TargetSize != net.OutputSize)
            throw new InvalidOperationException($"{net.Name} outputs {net.OutputSize} floats per sample, but the dataset's targets are [{string.Join(", ", data.Dataset.TargetShape)}] ({data.Dataset.TargetSize}).");
        return new RegressionBatches(net, data);
    }

    /// <summary>Trains a text classifier; returns the history.</summary>
    /// <exception cref="ArithmeticException">When a loss becomes NaN or infinite, naming the epoch and batch.</exception>
    public IReadOnlyList<EpochMetrics> Fit(TextDataLoader train, TextDataLoader? validation)
    {
        if (options.DataParallel is { } dp) { train = ForRank(train, dp); validation = validation is null ? null : ForRank(validation, dp); }
        var net = network as ISequenceClassifier ?? throw new InvalidOperationException($"{name} does not take token ids: train it with DataLoaders.");
        return FitCore(new TextBatches(net, train), validation is null ? null : new TextBatches(net, validation));
    }

    /// <summary>Trains a network with several inputs or outputs; returns the history.</summary>
    /// <exception cref="ArithmeticException">When a loss becomes NaN or infinite, naming the epoch and batch.</exception>
    /// <exception cref="InvalidOperationException">When the network is not an <see cref="IMultiNetwork"/>, or a loader's
    /// dataset lacks a column it reads or holds one of another type or size.</exception>
    public IReadOnlyList<EpochMetrics> Fit(TensorDataLoader train, TensorDataLoader? validation)
    {
        if (options.DataParallel is { } dp) { train = ForRank(train, dp); validation = validation is null ? null : ForRank(validation, dp); }
        var net = network as IMultiNetwork ?? throw new InvalidOperationException($"{name} has one input and one output: train it with DataLoaders or TextDataLoaders.");
        return FitCore(new TensorBatches(net, train), validation is null ? null : new TensorBatches(net, validation));
    }

    private static TensorDataLoader ForRank(TensorDataLoader data, IDataParallel dp) =>
        data.Ranks == 1 ? data.ForRank(dp.Rank, dp.Ranks)
        : data.Ranks == dp.Ranks && data.Rank == dp.Rank ? data
        : throw new InvalidOperationException($"The loader is rank {data.Rank} of {data.Ranks}, but this process is rank {dp.Rank} of {dp.Ranks}.");

    private IReadOnlyList<EpochMetrics> FitCore(IBatchRunner train, IBatchRunner? validation)
    {
        if (options.AccumulationSteps < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.AccumulationSteps, "TrainerOptions.AccumulationSteps must be at least 1.");
        // A run of no epoch would write the untrained weights as the result; a negative patience or clipping norm is a typo.
        if (options.Epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.Epochs, "TrainerOptions.Epochs must be at least 1.");
        if (options.EarlyStoppingPatience < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.EarlyStoppingPatience, "TrainerOptions.EarlyStoppingPatience must not be negative (0: no early stopping).");
        if (!(options.MaxGradNorm >= 0))
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxGradNorm, "TrainerOptions.MaxGradNorm must not be negative or NaN (0: no clipping).");
        // No batch would train nothing yet write checkpoints; an empty validation set would score every epoch 0 and pick the first.
        if (train.BatchesPerEpoch == 0)
            throw new ArgumentException("The training loader yields no batch (an empty dataset, or dropLast with a batch larger than the dataset): there is nothing to train on.", nameof(train));
        if (validation is { BatchesPerEpoch: 0 })
            throw new ArgumentException("The validation loader yields no batch (an empty dataset): pass null to train without validation.", nameof(validation));
        if (optimizer.Store != store)
            throw new InvalidOperationException($"The optimizer steps another parameter store than {name}'s: create it over {name}.Parameters (or, for a device twin, over the twin).");
        try { return FitEpochs(train, validation); }
        finally { store.AccumulateGradients = false; } // later TrainSteps start from zero again
    }

    private IReadOnlyList<EpochMetrics> FitEpochs(IBatchRunner train, IBatchRunner? validation)
    {
        var dp = options.DataParallel;
        bool writes = dp is null || dp.Rank == 0; // checkpoints and metrics files: rank 0 alone
        int classes = train.Classes;
        bool classifier = classes > 0; // a regressor has no accuracy: NaN in the metrics
        double bestLoss = double.PositiveInfinity;
        int startEpoch = 1, sinceBest = 0;
        ParameterStore? best = null;
        string? dir = options.OutputDirectory;
        if (dir is not null && writes) Directory.CreateDirectory(dir);
        string? last = dir is null ? null : Path.Combine(dir, "last.safetensors");
        if (dir is not null && writes) Serialization.AtomicFile.RemoveStaleTemporaries(dir);
        bool resumed = options.Resume && last is not null && File.Exists(last);
        if (resumed)
        {
            var meta = Checkpoint.Load(last!, store, optimizer);
            startEpoch = Checkpoint.MetadataInt(meta, "epoch") + 1;
            BestEpoch = Checkpoint.MetadataInt(meta, "best_epoch");
            sinceBest = Checkpoint.MetadataInt(meta, "since_best");
            if (meta.TryGetValue("best_loss", out var bl)) bestLoss = double.Parse(bl, CultureInfo.InvariantCulture);
            // The best epoch's weights live in best.safetensors: without them the run would end on the last epoch's.
            if (options.RestoreBest && BestEpoch > 0)
            {
                string bestPath = Path.Combine(dir!, "best.safetensors");
                if (!File.Exists(bestPath))
                    throw new InvalidDataException($"Resuming from '{last}' (best epoch {BestEpoch}) needs '{bestPath}' to restore the best weights at the end, and it is missing.");
                best = CloneLayout(store);
                Checkpoint.Load(bestPath, best);
            }
        }
        // Every rank from rank 0's weights (fresh or resumed), as DDP's construction broadcasts them; a device
        // optimizer's weights go through the host store (unless a checkpoint was just loaded there).
        if (dp is not null && !resumed) optimizer.ParametersToStore();
        dp?.BroadcastParameters();
        if (options.Resume || dp is not null) optimizer.ParametersFromStore();

        for (int epoch = startEpoch; epoch <= options.Epochs; epoch++)
        {
            int batches = train.BatchesPerEpoch;
            _observer.EpochStarted(epoch, options.Epochs, batches);
            var sw = Stopwatch.StartNew();
            double lossSum = 0; long seen = 0, correct = 0; int b = 0;
            var lossSums = new double[train.LossCount];
            int steps = options.AccumulationSteps;
            int groupLocal = 0, groupGlobal = 0; // samples of the current step's micro-batches, this rank's and all ranks'
            bool localLossFinite = true;
            // A group of `steps` micro-batches: the first starts from zero gradients, the others add to them.
            train.Run(epoch - 1, training: true, before: () =>
            {
                store.AccumulateGradients = b % steps != 0;
                if (b % steps == 0) options.Schedule?.Apply(optimizer);
            }, done: (loss, count, lg, labels, losses, global) =>
            {
                // A rank cannot throw alone (the others would wait in the allreduce): with data parallelism the ranks
                // agree on it before the step below.
                if (!float.IsFinite(loss) && dp is null)
                    throw new ArithmeticException($"The training loss became {loss} in epoch {epoch}, batch {b + 1} of {batches}; lower the learning rate or enable gradient clipping.");
                localLossFinite &= float.IsFinite(loss);
                groupLocal += count; groupGlobal += global;
                bool stepNow = (b + 1) % steps == 0 || b + 1 == batches;
                if (stepNow)
                {
                    int group = b % steps + 1;
                    if (group > 1) optimizer.ScaleGradients(1f / group);
                    if (dp is not null)
                    {
                        // Every rank learns whether any loss went non-finite, so all of them stop together.
                        Span<double> diverged = [localLossFinite ? 0 : 1];
                        dp.Sum(diverged);
                        if (diverged[0] > 0)
                            throw new ArithmeticException($"The training loss became non-finite on {diverged[0]} of {dp.Ranks} ranks in epoch {epoch}, batch {b + 1} of {batches}; lower the learning rate or enable gradient clipping.");
                        // The allreduce runs over the host store's gradients: a device optimizer's go there and back.
                        optimizer.GradientsToStore();
                        dp.AverageGradients(groupLocal, groupGlobal);
                        optimizer.GradientsFromStore();
                    }
                    groupLocal = groupGlobal = 0;
                    if (options.MaxGradNorm > 0) optimizer.ClipGradientNorm(options.MaxGradNorm);
                    optimizer.Step();
                }
                if (count > 0) { lossSum += (double)loss * count; seen += count; }
                for (int i = 0; i < losses.Length; i++) lossSums[i] += (double)losses[i] * count;
                correct += classifier ? Correct(lg, labels, classes) : 0;
                b++;
                _observer.BatchCompleted(epoch, b, batches, lossSum / seen, classifier ? (double)correct / seen : double.NaN, seen / sw.Elapsed.TotalSeconds);
            });
            if (dp is not null)
            {
                // The epoch over all ranks' samples.
                Span<double> sums = [lossSum, seen, correct];
                dp.Sum(sums);
                (lossSum, seen, correct) = (sums[0], (long)sums[1], (long)sums[2]);
                if (lossSums.Length > 0) dp.Sum(lossSums);
            }
            double seconds = sw.Elapsed.TotalSeconds;
            var (vLoss, vAcc, vLosses) = validation is null ? (double.NaN, double.NaN, []) : EvaluateCore(validation, null, dp);
            if (validation is not null && !double.IsFinite(vLoss))
                throw new ArithmeticException($"The validation loss became {vLoss} after epoch {epoch}; the weights have diverged (no checkpoint of this epoch was written). Lower the learning rate or enable gradient clipping.");
            optimizer.ParametersToStore(); // a device optimizer's weights, for the checks, copies and checkpoints below
            if (Checkpoint.FirstUnsound(store) is { } unsound)
                throw new ArithmeticException($"The weights diverged in epoch {epoch} ({unsound}); no checkpoint of this epoch was written. Lower the learning rate or enable gradient clipping.");
            var m = new EpochMetrics(epoch, lossSum / Math.Max(1, seen), classifier ? (double)correct / Math.Max(1, seen) : double.NaN, vLoss, vAcc, seconds, seen / seconds, optimizer.LearningRate)
            {
                TrainLosses = lossSums.Select(l => l / Math.Max(1, seen)).ToArray(),
                ValidationLosses = vLosses,
            };
            History.Add(m);
            double monitored = validation is null ? m.TrainLoss : vLoss;
            bool improved = monitored < bestLoss;
            if (improved)
            {
                bestLoss = monitored; BestEpoch = epoch; sinceBest = 0;
                if (options.RestoreBest) { best ??= CloneLayout(store); best.CopyFrom(store); }
                if (dir is not null && writes) Checkpoint.Save(Path.Combine(dir, "best.safetensors"), store, null, Meta(epoch, bestLoss, sinceBest));
            }
            else sinceBest++;
            if (last is not null && writes) Checkpoint.Save(last, store, optimizer, Meta(epoch, bestLoss, sinceBest));
            if (dir is not null && writes) WriteHistory(dir);
            _observer.EpochCompleted(m, improved);
            if (options.EarlyStoppingPatience > 0 && sinceBest >= options.EarlyStoppingPatience && epoch < options.Epochs)
            {
                _observer.EarlyStopped(epoch, BestEpoch);
                break;
            }
        }
        if (options.RestoreBest && best is not null) { store.CopyFrom(best); best.Dispose(); optimizer.ParametersFromStore(); }
        return History;
    }

    /// <summary>Runs a loader's batches through a network: a training step or an evaluation per batch.</summary>
    private interface IBatchRunner
    {
        int BatchesPerEpoch { get; }
        /// <summary>The classes of the output whose accuracy is counted (0: none, as for a regressor).</summary>
        int Classes { get; }
        /// <summary>The losses reported one by one (0 for a network with one loss).</summary>
        int LossCount { get; }
        void Run(int epoch, bool training, Action? before, BatchDone done);
    }

    /// <summary>A batch's mean loss over its <paramref name="count"/> samples (this rank's, none where its part is
    /// empty), the output and labels accuracy is counted on, each loss's mean (networks with several) and the samples of
    /// the global batch it belongs to.</summary>
    private delegate void BatchDone(float loss, int count, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, ReadOnlySpan<float> losses, int globalCount);

    /// <summary>A rank whose part of a short last batch is empty trains on nothing: zero gradients (unless it is adding
    /// micro-batches) for the average it still takes part in.</summary>
    private static void EmptyPart(ParameterStore store, bool training)
    {
        if (training && !store.AccumulateGradients) store.ZeroGradients();
    }

    private sealed class ImageBatches(IClassifier net, DataLoader data) : IBatchRunner
    {
        private readonly float[] _logits = new float[data.BatchSize * net.OutputSize];
        public int BatchesPerEpoch => data.BatchesPerEpoch;
        public int Classes => net.OutputSize;
        public int LossCount => 0;
        public void Run(int epoch, bool training, Action? before, BatchDone done)
        {
            foreach (var batch in data.Epoch(epoch))
            {
                before?.Invoke();
                if (batch.Count == 0) { EmptyPart(net.Parameters, training); done(0f, 0, default, default, default, batch.GlobalCount); continue; }
                var lg = _logits.AsSpan(0, batch.Count * net.OutputSize);
                float loss = training ? net.TrainStep(batch.InputSpan, batch.LabelSpan, batch.Count, lg) : net.EvaluateLoss(batch.InputSpan, batch.LabelSpan, batch.Count, lg);
                done(loss, batch.Count, lg, batch.LabelSpan, default, batch.GlobalCount);
            }
        }
    }

    /// <summary>A regressor's batches: the targets in place of labels, no accuracy.</summary>
    private sealed class RegressionBatches(IRegressor net, DataLoader data) : IBatchRunner
    {
        private readonly float[] _outputs = new float[data.BatchSize * net.OutputSize];
        public int BatchesPerEpoch => data.BatchesPerEpoch;
        public int Classes => 0;
        public int LossCount => 0;
        public void Run(int epoch, bool training, Action? before, BatchDone done)
        {
            foreach (var batch in data.Epoch(epoch))
            {
                before?.Invoke();
                if (batch.Count == 0) { EmptyPart(net.Parameters, training); done(0f, 0, default, default, default, batch.GlobalCount); continue; }
                var y = _outputs.AsSpan(0, batch.Count * net.OutputSize);
                float loss = training ? net.TrainStep(batch.InputSpan, batch.TargetSpan, batch.Count, y) : net.EvaluateLoss(batch.InputSpan, batch.TargetSpan, batch.Count, y);
                done(loss, batch.Count, default, default, default, batch.GlobalCount);
            }
        }
    }

    private sealed class TextBatches(ISequenceClassifier net, TextDataLoader data) : IBatchRunner
    {
        private readonly float[] _logits = new float[data.BatchSize * net.OutputSize];
        public int BatchesPerEpoch => data.BatchesPerEpoch;
        public int Classes => net.OutputSize;
        public int LossCount => 0;
        public void Run(int epoch, bool training, Action? before, BatchDone done)
        {
            foreach (var b in data.Epoch(epoch))
            {
                before?.Invoke();
                if (b.Count == 0) { EmptyPart(net.Parameters, training); done(0f, 0, default, default, default, b.GlobalCount); continue; }
                var lg = _logits.AsSpan(0, b.Count * net.OutputSize);
                float loss = training ? net.TrainStep(b.IdSpan, b.LabelSpan, b.MaskSpan, b.Count, b.Sequence, lg) : net.EvaluateLoss(b.IdSpan, b.LabelSpan, b.MaskSpan, b.Count, b.Sequence, lg);
                done(loss, b.Count, lg, b.LabelSpan, default, b.GlobalCount);
            }
        }
    }

    /// <summary>A multi-input or multi-output network's batches: every output written, each loss reported, the accuracy
    /// counted on the output of its first loss on class indices.</summary>
    private sealed class TensorBatches : IBatchRunner
    {
        private readonly IMultiNetwork _net;
        private readonly TensorDataLoader _data;
        private readonly float[][] _outputs;
        private readonly float[] _losses;
        private readonly LossSlot? _accuracy;
        private readonly int _accuracyOutput;

        public TensorBatches(IMultiNetwork net, TensorDataLoader data)
        {
            _net = net; _data = data;
            CheckColumns(net, data.Dataset);
            _outputs = net.Outputs.Select(o => new float[data.BatchSize * o.Size * (o.IsSequence ? net.MaxSequence : 1)]).ToArray();
            _losses = new float[net.Losses.Count];
            _accuracy = net.Losses.FirstOrDefault(l => l.Targets.IsInteger);
            _accuracyOutput = _accuracy is null ? -1 : net.Outputs.ToList().FindIndex(o => o.Name == _accuracy.Output);
            Classes = _accuracy is null ? 0 : net.Outputs[_accuracyOutput].Size;
        }

        public int BatchesPerEpoch => _data.BatchesPerEpoch;
        public int Classes { get; }
        public int LossCount => _losses.Length > 1 ? _losses.Length : 0;

        public void Run(int epoch, bool training, Action? before, BatchDone done)
        {
            foreach (var b in _data.Epoch(epoch))
            {
                before?.Invoke();
                if (b.Count == 0) { EmptyPart(_net.Parameters, training); done(0f, 0, default, default, default, b.GlobalCount); continue; }
                float loss = training ? _net.TrainStep(b, _outputs, _losses) : _net.EvaluateLoss(b, _outputs, _losses);
                var lg = _accuracy is null ? default : _outputs[_accuracyOutput].AsSpan(0, b.Count * Classes);
                var labels = _accuracy is null ? default : b.Integers(_accuracy.Targets.Name, 1);
                done(loss, b.Count, lg, labels, _losses.AsSpan(0, LossCount), b.GlobalCount);
            }
        }

        /// <summary>Every column the network reads is there, of its element type and size (before the first step); a
        /// sequence network's columns along T hold [positions, …] per sample, padded as its attention_mask column says.</summary>
        private static void CheckColumns(IMultiNetwork net, TensorDataset data)
        {
            var slots = net.Inputs.Concat(net.Losses.Select(l => l.Targets)).ToList();
            if (net.MaxSequence > 0) slots.Add(new TensorSlot("attention_mask", [-1], true));
            foreach (var slot in slots)
            {
                var column = data.Columns.FirstOrDefault(c => c.Name == slot.Name)
                    ?? throw new InvalidOperationException($"{net.Name} reads a column '{slot.Name}' ({Describe(slot.Shape, slot.IsInteger)} per sample), but the dataset has {TensorDataset.Names(data.Columns)}.");
                bool fits = slot.IsSequence
                    ? column.Shape.Length == slot.Shape.Count && column.SampleSize == column.Shape[0] * slot.Size
                    : column.SampleSize == slot.Size;
                if (column.IsInteger != slot.IsInteger || !fits)
                    throw new InvalidOperationException($"{net.Name} reads column '{slot.Name}' as {Describe(slot.Shape, slot.IsInteger)} per sample, but it holds {Describe(column.Shape, column.IsInteger)}.");
            }
        }

        private static string Describe(IReadOnlyList<int> shape, bool integer) =>
            (integer ? "integers" : "floats") + " [" + string.Join(", ", shape.Select(d => d == -1 ? "T" : d.ToString(CultureInfo.InvariantCulture))) + "]";
    }

    private Dictionary<string, string> Meta(int epoch, double bestLoss, int sinceBest) => new()
    {
        ["network"] = name,
        ["epoch"] = epoch.ToString(CultureInfo.InvariantCulture),
        ["best_epoch"] = BestEpoch.ToString(CultureInfo.InvariantCulture),
        ["best_loss"] = bestLoss.ToString("R", CultureInfo.InvariantCulture),
        ["since_best"] = sinceBest.ToString(CultureInfo.InvariantCulture),
    };

    private static ParameterStore CloneLayout(ParameterStore s)
    {
        var b = new ParameterStoreBuilder();
        foreach (var p in s.Parameters) b.Add(p.Name, p.Shape.ToArray(), p.Role, p.Init);
        foreach (var p in s.Buffers) b.AddBuffer(p.Name, p.Shape.ToArray(), p.Role, p.Init);
        return b.Build();
    }

    private static int Correct(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes)
    {
        int c = 0;
        for (int i = 0; i < labels.Length; i++) if (ConfusionMatrix.ArgMax(logits.Slice(i * classes, classes)) == labels[i]) c++;
        return c;
    }

    /// <summary>Mean loss and accuracy over all samples of a loader, in evaluation mode.</summary>
    public static (double Loss, double Accuracy) Evaluate(IClassifier network, DataLoader data, ConfusionMatrix? confusion = null)
    {
        var (loss, accuracy, _) = EvaluateCore(new ImageBatches(network, data), confusion);
        return (loss, accuracy);
    }

    /// <summary>Mean loss over all samples of a regression loader, in evaluation mode.</summary>
    /// <exception cref="InvalidOperationException">When the dataset has labels instead of targets, or targets of another size.</exception>
    public static double Evaluate(IRegressor network, DataLoader data) =>
        EvaluateCore(Regression(network, data), null).Loss;

    /// <summary>Mean loss and accuracy over all samples of a text loader, in evaluation mode.</summary>
    public static (double Loss, double Accuracy) Evaluate(ISequenceClassifier network, TextDataLoader data, ConfusionMatrix? confusion = null)
    {
        var (loss, accuracy, _) = EvaluateCore(new TextBatches(network, data), confusion);
        return (loss, accuracy);
    }

    /// <summary>The weighted loss, the accuracy of the first loss on class indices (NaN without one) and each loss's mean
    /// (empty with one loss) over all samples of a loader, in evaluation mode.</summary>
    /// <exception cref="InvalidOperationException">When the dataset lacks a column the network reads, or holds one of another type or size.</exception>
    public static (double Loss, double Accuracy, IReadOnlyList<double> Losses) Evaluate(IMultiNetwork network, TensorDataLoader data, ConfusionMatrix? confusion = null) =>
        EvaluateCore(new TensorBatches(network, data), confusion);

    private static (double Loss, double Accuracy, double[] Losses) EvaluateCore(IBatchRunner data, ConfusionMatrix? confusion, IDataParallel? dp = null)
    {
        int classes = data.Classes;
        double lossSum = 0; long seen = 0, correct = 0;
        var lossSums = new double[data.LossCount];
        data.Run(0, training: false, null, (loss, count, lg, labels, losses, _) =>
        {
            if (count == 0) return;
            lossSum += (double)loss * count;
            for (int i = 0; i < losses.Length; i++) lossSums[i] += (double)losses[i] * count;
            if (classes > 0)
            {
                correct += Correct(lg, labels, classes);
                confusion?.Add(lg, labels, count);
            }
            seen += count;
        });
        if (dp is not null)
        {
            // Each rank evaluated its part of every batch: the totals over all of them.
            Span<double> sums = [lossSum, seen, correct];
            dp.Sum(sums);
            (lossSum, seen, correct) = (sums[0], (long)sums[1], (long)sums[2]);
            if (lossSums.Length > 0) dp.Sum(lossSums);
        }
        if (seen == 0) throw new ArgumentException("The loader yields no sample to evaluate (an empty dataset): a loss and an accuracy of nothing would read as 0.", nameof(data));
        return (lossSum / seen, classes > 0 ? (double)correct / seen : double.NaN, lossSums.Select(l => l / seen).ToArray());
    }

    /// <summary>Writes the history as <c>history.csv</c> and <c>history.json</c>.</summary>
    public void WriteHistory(string dir)
    {
        var csv = new StringBuilder("epoch,train_loss,train_accuracy,val_loss,val_accuracy,seconds,samples_per_second,lr\n");
        foreach (var m in History)
            csv.Append(CultureInfo.InvariantCulture, $"{m.Epoch},{m.TrainLoss:R},{m.TrainAccuracy:R},{m.ValidationLoss:R},{m.ValidationAccuracy:R},{m.Seconds:R},{m.SamplesPerSecond:R},{m.LearningRate:R}\n");
        Serialization.AtomicFile.Write(Path.Combine(dir, "history.csv"), Encoding.UTF8.GetBytes(csv.ToString()));
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var m in History)
            {
                w.WriteStartObject();
                // JSON has no NaN or infinity: such a value is written as null.
                void Number(string key, double v) { if (double.IsFinite(v)) w.WriteNumber(key, v); else w.WriteNull(key); }
                w.WriteNumber("epoch", m.Epoch); Number("train_loss", m.TrainLoss); Number("train_accuracy", m.TrainAccuracy);
                if (!double.IsNaN(m.ValidationLoss)) { Number("val_loss", m.ValidationLoss); Number("val_accuracy", m.ValidationAccuracy); }
                // A network with several losses: each one's mean, in the network's order of its losses.
                void Numbers(string key, IReadOnlyList<double> values)
                {
                    if (values.Count == 0) return;
                    w.WriteStartArray(key);
                    foreach (var v in values) { if (double.IsFinite(v)) w.WriteNumberValue(v); else w.WriteNullValue(); }
                    w.WriteEndArray();
                }
                Numbers("train_losses", m.TrainLosses); Numbers("val_losses", m.ValidationLosses);
                Number("seconds", m.Seconds); Number("samples_per_second", m.SamplesPerSecond); Number("lr", m.LearningRate);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        Serialization.AtomicFile.Write(Path.Combine(dir, "history.json"), ms.ToArray());
    }

    private sealed class NullObserver : ITrainingObserver { }
}
