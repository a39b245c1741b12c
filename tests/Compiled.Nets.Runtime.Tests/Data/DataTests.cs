using System.Buffers.Binary;
using System.IO.Compression;
using Compiled.Nets.Data;

namespace Compiled.Nets.Runtime.Tests.Data;

public class DataTests
{
    internal static string Temp() => Directory.CreateTempSubdirectory("cnets").FullName;

    internal static void WriteIdx(string dir, int n, int rows, int cols, bool gzip, Func<int, int> label, int? labelCount = null, int truncateImages = 0)
    {
        var img = new byte[16 + n * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(img, 0x803); BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(4), n);
        BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(8), rows); BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(12), cols);
        for (int i = 0; i < n * rows * cols; i++) img[16 + i] = (byte)(i * 7 % 256);
        int ln = labelCount ?? n;
        var lab = new byte[8 + ln];
        BinaryPrimitives.WriteInt32BigEndian(lab, 0x801); BinaryPrimitives.WriteInt32BigEndian(lab.AsSpan(4), ln);
        for (int i = 0; i < ln; i++) lab[8 + i] = (byte)label(i);
        Write(Path.Combine(dir, "images" + (gzip ? ".gz" : "")), img.AsSpan(0, img.Length - truncateImages).ToArray(), gzip);
        Write(Path.Combine(dir, "labels" + (gzip ? ".gz" : "")), lab, gzip);
    }

    private static void Write(string path, byte[] bytes, bool gzip)
    {
        if (!gzip) { File.WriteAllBytes(path, bytes); return; }
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Fastest);
        gz.Write(bytes);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_ReadsRawAndGzip(bool gzip)
    {
        var dir = Temp();
        WriteIdx(dir, 5, 3, 4, gzip, i => i % 10);
        string s = gzip ? ".gz" : "";
        var d = DatasetReaders.ReadIdx(Path.Combine(dir, "images" + s), Path.Combine(dir, "labels" + s));
        Assert.Equal(5, d.Count); Assert.Equal(new[] { 1, 3, 4 }, d.SampleShape);
        Assert.Equal(7 / 255f, d.Samples[1], 6); Assert.Equal(4, d.Labels[4]);
    }

    [Fact]
    public void Idx_Errors_NameTheFileAndProblem()
    {
        var dir = Temp();
        WriteIdx(dir, 5, 3, 4, false, i => i, truncateImages: 3);
        var ex = Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadIdxImages(Path.Combine(dir, "images")));
        Assert.Contains("truncated", ex.Message); Assert.Contains("images", ex.Message);
        var dir2 = Temp();
        WriteIdx(dir2, 5, 3, 4, false, i => i * 3);
        Assert.Contains("label 12 of item 4", Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadIdxLabels(Path.Combine(dir2, "labels"), 10)).Message);
        var dir3 = Temp();
        WriteIdx(dir3, 5, 3, 4, false, i => i, labelCount: 4);
        Assert.Contains("5 images but", Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadIdx(Path.Combine(dir3, "images"), Path.Combine(dir3, "labels"))).Message);
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadIdxImages(Path.Combine(dir3, "labels"))).Message);
        Assert.Throws<FileNotFoundException>(() => DatasetReaders.ReadIdxImages(Path.Combine(dir3, "nope")));
        var gz = Path.Combine(dir3, "broken.gz");
        File.WriteAllBytes(gz, new byte[] { 0x1f, 0x8b, 8, 0, 0, 0 });
        Assert.Contains("gzip", Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadIdxImages(gz)).Message);
    }

    [Fact]
    public void Cifar10_ReadsRecords_AndRejectsPartialOnes()
    {
        var dir = Temp();
        var rec = new byte[2 * 3073];
        rec[0] = 3; rec[1] = 255; rec[3073] = 9; rec[3073 + 3072] = 51;
        var path = Path.Combine(dir, "data_batch_1.bin");
        File.WriteAllBytes(path, rec);
        var d = DatasetReaders.ReadCifar10([path]);
        Assert.Equal(new[] { 3, 9 }, d.Labels); Assert.Equal(1f, d.Samples[0]); Assert.Equal(0.2f, d.Samples[2 * 3072 - 1], 6);
        File.WriteAllBytes(path, rec.AsSpan(0, 5000).ToArray());
        Assert.Contains("whole number", Assert.Throws<InvalidDataException>(() => DatasetReaders.ReadCifar10([path])).Message);
    }

    private static Dataset Numbers(int n) => new(Enumerable.Range(0, n).Select(i => (float)i).ToArray(), Enumerable.Range(0, n).Select(i => i % 3).ToArray(), [1], 3);

    [Fact]
    public void Loader_ShufflesDeterministically_CoversEverySample_AndDropsLast()
    {
        var data = Numbers(10);
        var a = new DataLoader(data, 4, seed: 5);
        var seen = a.Epoch(0).SelectMany(b => b.InputSpan.ToArray()).ToArray();
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (float)i), seen.OrderBy(x => x));
        Assert.NotEqual(Enumerable.Range(0, 10).Select(i => (float)i), seen);
        Assert.Equal(seen, new DataLoader(data, 4, seed: 5, prefetch: false).Epoch(0).SelectMany(b => b.InputSpan.ToArray()));
        Assert.NotEqual(seen, a.Epoch(1).SelectMany(b => b.InputSpan.ToArray()));
        var drop = new DataLoader(data, 4, dropLast: true);
        Assert.Equal(2, drop.BatchesPerEpoch);
        Assert.Equal(new[] { 4, 4 }, drop.Epoch(0).Select(b => b.Count).ToArray());
        Assert.Equal(new[] { 4, 4, 2 }, a.Epoch(0).Select(b => b.Count).ToArray());
    }

    [Fact]
    public void Augmentation_FlipAndCrop_KeepShape_AreSeeded()
    {
        var x = Enumerable.Range(0, 2 * 4 * 5).Select(i => (float)i + 1).ToArray();
        var data = new Dataset(x, [0], [2, 4, 5], 1);
        var aug = new Augmentation { CropPadding = 1, HorizontalFlip = true };
        float[] Run(ulong seed) => new DataLoader(data, 1, shuffle: false, seed: seed, augmentation: aug).Epoch(0).Single().InputSpan.ToArray();
        Assert.Equal(Run(3), Run(3));
        var results = Enumerable.Range(0, 20).Select(s => Run((ulong)s)).ToList();
        Assert.Contains(results, r => !r.SequenceEqual(x));
        Assert.All(results, r => Assert.Equal(40, r.Length));
        // A flip without crop mirrors each row.
        var flipOnly = new Augmentation { HorizontalFlip = true };
        var flipped = Enumerable.Range(0, 40).Select(s => new DataLoader(data, 1, shuffle: false, seed: (ulong)s, augmentation: flipOnly).Epoch(0).Single().InputSpan.ToArray())
            .First(r => !r.SequenceEqual(x));
        Assert.Equal(new float[] { 5, 4, 3, 2, 1 }, flipped.Take(5));
    }

    [Fact]
    public void Split_IsStratified_AndNormalizeUsesChannelStats()
    {
        var data = Numbers(30);
        var (train, val) = data.Split(0.2, 1);
        Assert.Equal(24, train.Count); Assert.Equal(6, val.Count);
        Assert.Equal(new[] { 2, 2, 2 }, Enumerable.Range(0, 3).Select(c => val.Labels.Count(l => l == c)).ToArray());
        Assert.Empty(train.Samples.Intersect(val.Samples));
        var (mean, std) = train.ChannelStatistics();
        train.Normalize(mean, std);
        Assert.Equal(0, train.Samples.Average(), 4);
    }

    [Fact]
    public void An_epoch_left_early_leaves_no_prefetch_running_into_the_next_epochs_buffers()
    {
        const int n = 8192, size = 784;
        var x = new float[n * size];
        for (int i = 0; i < x.Length; i++) x[i] = i / size;
        // Augmented, so a fill takes milliseconds; the last sample of a batch is written last. The prefetch needs a pool
        // thread, which the parallel test run may have taken: room for it, so it runs when the loader starts it.
        ThreadPool.GetMinThreads(out int workers, out int io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), io);
        var loader = new DataLoader(new Dataset(x, new int[n], [1, 28, 28], 1), 4096, seed: 5, augmentation: new Augmentation { CropPadding = 4, HorizontalFlip = true });
        var buffers = loader.Epoch(1).ToList(); // the loader's two buffers, in the order it fills them
        for (int trial = 0; trial < 4; trial++)
        {
            _ = loader.Epoch(trial % 2 * 2).First(); // leaves while the second batch is being prefetched
            var last = buffers[1].Inputs.AsSpan((4096 - 1) * size, size).ToArray();
            Thread.Sleep(50);
            Assert.True(buffers[1].Inputs.AsSpan((4096 - 1) * size, size).SequenceEqual(last), "a fill went on after the epoch was left");
        }
    }

    [Fact]
    public void A_constant_channel_an_empty_dataset_and_an_empty_shape_are_refused_not_turned_into_NaN()
    {
        var constant = new Dataset(new float[2 * 2 * 3], [0, 1], [2, 3], 2); // two channels, both constant (zeros)
        var (mean, std) = constant.ChannelStatistics();
        Assert.Equal([0f, 0f], std);
        var e = Assert.Throws<ArgumentException>(() => constant.Normalize(mean, std));
        Assert.Contains("Channel 0: mean 0 and standard deviation 0", e.Message);
        Assert.Throws<ArgumentException>(() => constant.Normalize([0f, float.NaN], [1f, 1f]));
        Assert.Equal(new float[12], constant.Samples); // left as they were
        Assert.Contains("empty dataset", Assert.Throws<InvalidOperationException>(() => constant.Subset([]).ChannelStatistics()).Message);
        Assert.Contains("positive dimensions", Assert.Throws<ArgumentException>(() => new Dataset([], [], [0, 3], 2)).Message);
        Assert.Contains("positive dimensions", Assert.Throws<ArgumentException>(() => new Dataset([1f], [1f], [1], [-1])).Message);
    }
}
