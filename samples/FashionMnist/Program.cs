using System.CommandLine;
using System.Diagnostics;
using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Distributed;
using Compiled.Nets.Gpu;
using Compiled.Nets.Reporting;
using static Compiled.Nets.Samples.SampleCommandLine;
using Compiled.Nets.Samples.FashionMnist;
using Compiled.Nets.Training;

// The seed recipe: the ConvNet, AdamW lr 1e-3, batch 64, 10 epochs, train/validation/test, accuracy over samples.
// --model resnet trains the small ResNet (ResNet.cs) with the same recipe instead.
var data = new Option<string?>("--data") { Description = "Folder with the four Fashion-MNIST IDX files (default: the Debian package, else the shipped subset)" };
var epochs = new Option<int>("--epochs") { Description = "Epochs", DefaultValueFactory = _ => 10 };
var batchSize = new Option<int>("--batch-size") { Description = "Batch size", DefaultValueFactory = _ => 64 };
var lr = new Option<float>("--lr") { Description = "Learning rate", DefaultValueFactory = _ => 1e-3f };
var optimizerName = new Option<string>("--optimizer") { Description = "adamw | adam | sgd", DefaultValueFactory = _ => "adamw" };
optimizerName.AcceptOnlyFromAmong("adamw", "adam", "sgd");
var seed = new Option<ulong>("--seed") { Description = "Seed of initialisation, split and shuffling", DefaultValueFactory = _ => 42 };
var model = new Option<string>("--model") { Description = "convnet (the seed ConvNet) | resnet (a small ResNet of parameterised blocks)", DefaultValueFactory = _ => "convnet" };
model.AcceptOnlyFromAmong("convnet", "resnet");
var output = new Option<string?>("--output") { Description = "Folder for checkpoints, plots and metrics (default out/fashion-mnist, or out/fashion-mnist-resnet)" };
var limit = new Option<int>("--limit") { Description = "Train on at most N samples (quick runs)", DefaultValueFactory = _ => 0 };
var patience = new Option<int>("--patience") { Description = "Early-stopping patience in epochs (0: off)", DefaultValueFactory = _ => 3 };
var resume = new Option<bool>("--resume") { Description = "Resume from <output>/last.safetensors" };
var servingCheck = new Option<bool>("--serving-check") { Description = "Then classify the test set image by image in float32 and with read-only bfloat16 Linear weights: latency, accuracy, agreement" };

var deviceKind = new Option<string>("--device") { Description = "cpu (the compiled CPU code) | gpu (CUDA, an error without one; under mpirun each rank takes the GPU numbered by its local rank) | auto (CUDA when present, else ILGPU's CPU accelerator) | cpu-accelerator", DefaultValueFactory = _ => "cpu" };
deviceKind.AcceptOnlyFromAmong("cpu", "gpu", "auto", "cpu-accelerator");
var tf32 = Tf32Option();
var distributed = new Option<bool>("--distributed") { Description = "Train as one rank of an MPI job (start it with mpirun -np N …; under mpirun this is the default): --batch-size is the global batch, split over the ranks; rank 0 reports and writes" };
// Impossible numbers are parse errors (one line and the usage), before anything is loaded or written.
Check(epochs, v => v >= 1, "at least 1");
Check(batchSize, v => v >= 1, "at least 1");
Check(limit, v => v >= 0, "at least 0");
Check(patience, v => v >= 0, "at least 0");
Check(lr, v => float.IsFinite(v) && v > 0, "a positive number");
var root = new RootCommand("Train the seed ConvNet on Fashion-MNIST with Compiled.Nets") { data, model, epochs, batchSize, lr, optimizerName, seed, output, limit, patience, resume, servingCheck, deviceKind, tf32, distributed };
root.SetAction(Guarded(Run));
return root.Parse(args).Invoke();

int Run(ParseResult parse)
{
    using var job = parse.GetValue(distributed) || DistributedContext.IsLaunchedByMpi ? DistributedContext.Initialize() : null;
    // Every rank loads the same data and weights; only rank 0 speaks.
    var console = job is { IsRoot: false } ? TextWriter.Null : Console.Out;
    if (job is not null) console.WriteLine($"Data-parallel: {job.Size} ranks, global batch {parse.GetValue(batchSize)}");
    var (trainAll, test, source) = FashionMnistData.Load(parse.GetValue(data));
    console.WriteLine($"Data: {source}");
    if (parse.GetValue(limit) is > 0 and var n && n < trainAll.Count) trainAll = trainAll.Take(n);
    var (train, val) = trainAll.Split(0.1, parse.GetValue(seed));
    if (val.Count == 0) throw new ArgumentException($"--limit {parse.GetValue(limit)} leaves no image for validation (a tenth of each class); use a larger limit.");
    // Normalise with the training set's statistics (Fashion-MNIST: mean ≈ 0.286, std ≈ 0.353).
    var (mean, std) = train.ChannelStatistics();
    train.Normalize(mean, std); val.Normalize(mean, std); test.Normalize(mean, std);
    console.WriteLine($"Train {train.Count}, validation {val.Count}, test {test.Count}; batch {parse.GetValue(batchSize)}, {parse.GetValue(epochs)} epochs, {parse.GetValue(optimizerName)} lr {parse.GetValue(lr)}");

    bool resnet = parse.GetValue(model) == "resnet";
    IClassifier net = resnet ? new ResNet(parse.GetValue(seed)) : new ConvNet(parse.GetValue(seed));
    using var owned = (IDisposable)net;
    console.WriteLine($"Model: {net.Name}, {net.Parameters.Parameters.Where(p => !p.IsBuffer).Sum(p => (long)p.Length):N0} parameters");
    // --device other than cpu: the network's generated twin trains on a GpuDevice under the same Trainer (parameters,
    // gradients and optimizer state stay on the device); the best weights come back to `net` for the test below.
    string kind = parse.GetValue(deviceKind)!;
    // A data-parallel job gives each rank on a machine its own GPU (Open MPI's local rank).
    using var device = OpenDevice(kind == "gpu" ? job is null ? "cuda" : $"cuda:{job.LocalRank}" : kind, parse.GetValue(tf32));
    if (device is not null) console.WriteLine($"Device: {device}; GEMM: {device.GemmBackend}");
    using var twin = device is null ? null : net switch
    {
        ConvNet c => (DeviceNetwork)c.ToDevice(device),
        ResNet r => r.ToDevice(device),
        _ => throw new NotSupportedException(net.Name),
    };
    IClassifier trained = twin is null ? net : (IClassifier)twin;
    float rate = parse.GetValue(lr);
    Optimizer opt = (parse.GetValue(optimizerName), twin) switch
    {
        ("adam", null) => new Adam(net.Parameters, rate),
        ("sgd", null) => new Sgd(net.Parameters, rate, momentum: 0.9f, nesterov: true),
        (_, null) => new AdamW(net.Parameters, rate),
        ("adam", { } t) => new DeviceAdam(t, rate),
        ("sgd", { } t) => new DeviceSgd(t, rate, momentum: 0.9f, nesterov: true),
        (_, { } t) => new DeviceAdamW(t, rate),
    };
    using var ownedOptimizer = opt as IDisposable;
    string outDir = parse.GetValue(output) ?? (resnet ? "out/fashion-mnist-resnet" : "out/fashion-mnist");
    var observer = new ConsoleObserver();
    var trainer = new Trainer(trained, opt, new TrainerOptions
    {
        Epochs = parse.GetValue(epochs), EarlyStoppingPatience = parse.GetValue(patience), OutputDirectory = outDir, Resume = parse.GetValue(resume),
        DataParallel = job is null ? null : new DataParallel(job, net.Parameters),
    }, observer);
    var sw = Stopwatch.StartNew();
    trainer.Fit(new DataLoader(train, parse.GetValue(batchSize), shuffle: true, seed: parse.GetValue(seed)), new DataLoader(val, 256, shuffle: false));
    console.WriteLine($"Training{(device is null ? "" : " on the device")} took {sw.Elapsed.TotalSeconds:F1} s; best validation epoch {trainer.BestEpoch}.");
    // The ranks end with the same weights: rank 0 tests and writes them.
    if (job is { IsRoot: false }) return 0;

    var confusion = new ConfusionMatrix(10);
    var (testLoss, testAcc) = Trainer.Evaluate(net, new DataLoader(test, 256, shuffle: false), confusion);
    var report = new ClassificationReport(confusion, DatasetReaders.FashionMnistClasses);
    Console.WriteLine($"Test loss {testLoss:F4}, test accuracy {testAcc:P2} over {confusion.Total} samples");
    observer.Report(report);
    report.WriteFiles(outDir);
    // The deployable model: the restored best weights with the input normalisation and class names (samples/Inference reads it).
    Checkpoint.Save(Path.Combine(outDir, "model.safetensors"), net.Parameters, null, new Dictionary<string, string>
    {
        ["mean"] = mean[0].ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        ["std"] = std[0].ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        ["classes"] = string.Join("|", DatasetReaders.FashionMnistClasses),
    });
    Plots.Curves(trainer.History, Path.Combine(outDir, "loss.png"), Path.Combine(outDir, "accuracy.png"));
    Plots.ConfusionMatrix(confusion, DatasetReaders.FashionMnistClasses, Path.Combine(outDir, "confusion.png"));
    Console.WriteLine($"Wrote checkpoints, model.safetensors, history.csv/json, test_report.*, loss.png, accuracy.png, confusion.png to {Path.GetFullPath(outDir)}");
    if (parse.GetValue(servingCheck)) ServingCheck(net, test);
    return 0;
}

// Batch-1 serving of the trained network: float32, then with the store read-only and Linear weights in bfloat16.
static void ServingCheck(IClassifier net, Dataset test)
{
    (int[] Predictions, double MedianMicroseconds) Classify()
    {
        var logits = new float[10];
        var predictions = new int[test.Count];
        var times = new double[test.Count];
        for (int i = 0; i < test.Count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            net.Forward(test.Sample(i), 1, logits);
            times[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            predictions[i] = Array.IndexOf(logits, logits.Max());
        }
        Array.Sort(times);
        return (predictions, times[times.Length / 2]);
    }
    Classify();   // warm-up
    var (full, fullUs) = Classify();
    net.Parameters.MakeReadOnly(Compiled.Nets.WeightPrecision.BFloat16);
    var (half, halfUs) = Classify();
    net.Parameters.MakeWritable();
    double Accuracy(int[] p) => p.Where((c, i) => c == test.Labels[i]).Count() / (double)test.Count;
    int agree = full.Where((c, i) => c == half[i]).Count();
    Console.WriteLine($"Serving, batch 1, {test.Count} test images: float32 {fullUs:F0} µs/image (median), accuracy {Accuracy(full):P2}; " +
                      $"bfloat16 Linear weights {halfUs:F0} µs/image, accuracy {Accuracy(half):P2}; same prediction for {agree} ({agree / (double)test.Count:P2})");
}
