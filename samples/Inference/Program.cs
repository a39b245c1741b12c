using System.Diagnostics;
using System.Globalization;
using Compiled.Nets;
using Compiled.Nets.Data;
using Compiled.Nets.Samples.FashionMnist;
using Compiled.Nets.Training;
using StbImageSharp;

// Classifies Fashion-MNIST-style images with a model the FashionMnist sample trained (its model.safetensors, which
// carries the input normalisation): IDX image files (.idx3-ubyte, raw or .gz) or PNG/JPEG/BMP pictures, grey 28×28
// (larger pictures are scaled down). Prints each image's class and probability; --bench times batch-1 requests.
var clock = Stopwatch.StartNew();
string model = "out/fashion-mnist/model.safetensors";
bool bench = false;
var files = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--model" && i + 1 < args.Length) model = args[++i];
    else if (args[i] == "--bench") bench = true;
    else if (args[i] is "--help" or "-h") { Console.WriteLine("usage: fashion-classify [--model model.safetensors] [--bench] IMAGES.idx3-ubyte[.gz] | PICTURE.png ..."); return 0; }
    else files.Add(args[i]);
}
if (files.Count == 0) { Console.Error.WriteLine("No images given (--help for usage)."); return 2; }

try
{
    // The parameter table without the random initialisation the checkpoint would overwrite anyway.
    var layout = new ParameterStoreBuilder();
    ConvNet.DeclareParameters(layout, "");
    using var store = layout.Build();
    var meta = Checkpoint.Load(model, store);
    using var net = new ConvNet(store, "");
    float mean = Meta(meta, "mean", 0.2860f), std = Meta(meta, "std", 0.3530f);
    net.Parameters.MakeReadOnly(WeightPrecision.BFloat16); // serving: bfloat16 Linear weights at batch 1
    string[] classes = meta.TryGetValue("classes", out var c) ? c.Split('|') : DatasetReaders.FashionMnistClasses;

    var images = new List<(string Name, float[] Pixels)>();
    foreach (var file in files)
    {
        if (file.Contains("idx", StringComparison.OrdinalIgnoreCase) || file.EndsWith("ubyte", StringComparison.Ordinal) || file.EndsWith(".gz", StringComparison.Ordinal))
        {
            var (pixels, count, rows, cols) = DatasetReaders.ReadIdxImages(file);
            if (rows != 28 || cols != 28) throw new InvalidDataException($"{file} holds {rows}×{cols} images; the model takes 28×28.");
            for (int n = 0; n < count; n++) images.Add(($"{Path.GetFileName(file)}#{n}", pixels.AsSpan(n * 784, 784).ToArray()));
        }
        else images.Add((Path.GetFileName(file), Picture(file)));
    }

    var probs = new float[10];
    var x = new float[784];
    for (int n = 0; n < images.Count; n++)
    {
        for (int i = 0; i < 784; i++) x[i] = (images[n].Pixels[i] - mean) / std;
        net.Forward(x, 1, probs);
        Softmax(probs);
        int best = 0;
        for (int k = 1; k < 10; k++) if (probs[k] > probs[best]) best = k;
        if (n == 0) Console.Error.WriteLine($"first prediction {clock.Elapsed.TotalMilliseconds:F1} ms after start ({(DateTime.Now - Process.GetCurrentProcess().StartTime).TotalMilliseconds:F0} ms since the process began)");
        if (n < 20 || !bench) Console.WriteLine($"{images[n].Name}: {classes[best]} ({probs[best] * 100:F1} %)");
    }

    if (bench)
    {
        // Requests are the first (up to) 64 images in turn: how much of the weights a request reads depends on the image.
        var requests = new float[Math.Min(64, images.Count)][];
        for (int n = 0; n < requests.Length; n++)
        {
            requests[n] = new float[784];
            for (int i = 0; i < 784; i++) requests[n][i] = (images[n].Pixels[i] - mean) / std;
        }
        var times = new double[2000];
        for (int r = 0; r < 200; r++) net.Forward(requests[r % requests.Length], 1, probs);
        for (int r = 0; r < times.Length; r++)
        {
            var request = requests[r % requests.Length];
            long t0 = Stopwatch.GetTimestamp();
            net.Forward(request, 1, probs);
            times[r] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        }
        Array.Sort(times);
        Console.Error.WriteLine($"batch-1 latency: median {times[times.Length / 2]:F1} µs, p90 {times[times.Length * 9 / 10]:F1} µs over {times.Length} requests (Vector512 {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}, Vector256 {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated})");
    }
    return 0;
}
catch (Exception e) when (e is InvalidDataException or FileNotFoundException or ArgumentException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}

static float Meta(IReadOnlyDictionary<string, string> meta, string key, float fallback) =>
    meta.TryGetValue(key, out var v) && float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) ? f : fallback;

static void Softmax(Span<float> z)
{
    float max = float.MinValue, sum = 0;
    foreach (float v in z) max = Math.Max(max, v);
    for (int i = 0; i < z.Length; i++) { z[i] = MathF.Exp(z[i] - max); sum += z[i]; }
    for (int i = 0; i < z.Length; i++) z[i] /= sum;
}

// A picture as 28×28 grey values in [0, 1] (area-averaged when larger), as Fashion-MNIST stores them.
static float[] Picture(string path)
{
    ImageResult image;
    try { image = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.Grey); }
    catch (Exception e) when (e is not FileNotFoundException) { throw new InvalidDataException($"{path} is not a PNG, JPEG or BMP picture ({e.Message}).", e); }
    var result = new float[784];
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
        {
            int x0 = x * image.Width / 28, x1 = Math.Max(x0 + 1, (x + 1) * image.Width / 28);
            int y0 = y * image.Height / 28, y1 = Math.Max(y0 + 1, (y + 1) * image.Height / 28);
            float sum = 0;
            for (int yy = y0; yy < y1; yy++) for (int xx = x0; xx < x1; xx++) sum += image.Data[yy * image.Width + xx];
            result[y * 28 + x] = sum / ((x1 - x0) * (y1 - y0) * 255f);
        }
    return result;
}
