using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// [CustomLoss]: a loss written as a method of the class, compiled and differentiated like Forward; checked against the
/// built-in loss it restates and against the same method run on eager tensors.
/// </summary>
public class CustomLossTests
{
    private static float[][] Gradients(ParameterStore store) => store.Parameters.Select(p => store.Gradient(p).ToArray()).ToArray();

    [Fact]
    public void ASquaredErrorMethod_TrainsAsMSELossDoes()
    {
        using var custom = new CustomMseNet(seed: 3);
        using var builtIn = new BuiltInMseNet(seed: 3);
        const int batch = 4;
        var x = CompiledVsEagerTests.RandomData(batch * 5, 1);
        var t = CompiledVsEagerTests.RandomData(batch * 3, 2);
        float[] yc = new float[batch * 3], yb = new float[batch * 3];
        Assert.Equal(builtIn.TrainStep(x, t, batch, yb), custom.TrainStep(x, t, batch, yc), 6);
        Assert.Equal(yb, yc);
        var gc = Gradients(custom.Parameters);
        var gb = Gradients(builtIn.Parameters);
        for (int p = 0; p < gb.Length; p++)
            for (int i = 0; i < gb[p].Length; i++) Assert.Equal(gb[p][i], gc[p][i], 6);
        Assert.Equal(builtIn.EvaluateLoss(x, t, batch), custom.EvaluateLoss(x, t, batch), 6);
        // Forward is the network alone: no targets, no loss ops.
        custom.Forward(x, batch, yc);
        builtIn.Forward(x, batch, yb);
        Assert.Equal(yb, yc);
    }

    [Fact]
    public void AHuberMethodWithAbs_TrainsAsSmoothL1Does()
    {
        using var custom = new HuberMethodNet(seed: 4);
        using var builtIn = new BuiltInSmoothL1Net(seed: 4);
        const int batch = 5;
        var x = CompiledVsEagerTests.RandomData(batch * 5, 5);
        var t = CompiledVsEagerTests.RandomData(batch * 3, 6, 3f); // differences on both sides of 1
        Assert.Equal(builtIn.TrainStep(x, t, batch), custom.TrainStep(x, t, batch), 5);
        var gc = Gradients(custom.Parameters);
        var gb = Gradients(builtIn.Parameters);
        for (int p = 0; p < gb.Length; p++)
            for (int i = 0; i < gb[p].Length; i++) Assert.True(Math.Abs(gb[p][i] - gc[p][i]) < 1e-6, $"{custom.Parameters.Parameters[p].Name}[{i}]: smooth L1 {gb[p][i]}, Huber method {gc[p][i]}");
    }

    [Fact]
    public void APinballMethod_MatchesTheSameMethodOnEagerTensors()
    {
        using var net = new QuantileNet(seed: 5);
        IRegressor regressor = net; // float targets shaped like the output: a regressor, so Trainer takes it
        const int batch = 6;
        var x = CompiledVsEagerTests.RandomData(batch * 5, 3);
        var t = CompiledVsEagerTests.RandomData(batch * 3, 4);
        net.Parameters.ZeroGradients();
        Tensor loss;
        using (Eager.Training())
        {
            loss = net.Pinball(net.ForwardEager(new Tensor((float[])x.Clone(), batch, 5)), new Tensor((float[])t.Clone(), batch, 3)).Mean();
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        Assert.Equal(loss.Data[0], regressor.TrainStep(x, t, batch), 6);
        var compiled = Gradients(net.Parameters);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++) Assert.True(Math.Abs(eager[p][i] - compiled[p][i]) < 1e-6, $"{net.Parameters.Parameters[p].Name}[{i}]: eager {eager[p][i]}, compiled {compiled[p][i]}");
        Assert.Contains(compiled, g => g.Any(v => v != 0));
        Assert.Equal(loss.Data[0], net.EvaluateLoss(x, t, batch), 6);
        var ex = Assert.Throws<ArgumentException>(() => net.TrainStep(x, new float[5], batch));
        Assert.Contains("targets have 5 floats", ex.Message);
    }

    [Fact]
    public void ACrossEntropyMethodOnClassIndices_TrainsAsCrossEntropyLossDoes()
    {
        using var custom = new CrossEntropyMethodNet(seed: 7);
        using var builtIn = new BuiltInCrossEntropyNet(seed: 7);
        IClassifier classifier = custom; // class indices: a classifier, so Trainer and the metrics take it
        const int batch = 6;
        var x = CompiledVsEagerTests.RandomData(batch * 5, 8);
        int[] labels = [0, 2, 1, 1, 0, 2];
        float[] lc = new float[batch * 3], lb = new float[batch * 3];
        Assert.Equal(builtIn.TrainStep(x, labels, batch, lb), classifier.TrainStep(x, labels, batch, lc), 6);
        Assert.Equal(lb, lc);
        var gc = Gradients(custom.Parameters);
        var gb = Gradients(builtIn.Parameters);
        for (int p = 0; p < gb.Length; p++)
            for (int i = 0; i < gb[p].Length; i++) Assert.True(Math.Abs(gb[p][i] - gc[p][i]) < 1e-6, $"{custom.Parameters.Parameters[p].Name}[{i}]: cross-entropy {gb[p][i]}, method {gc[p][i]}");
        Assert.Equal(builtIn.EvaluateLoss(x, labels, batch), custom.EvaluateLoss(x, labels, batch), 6);

        // Labels are checked: their count, and each value where OneHot reads it.
        Assert.Contains("5 labels for a batch of 6", Assert.Throws<ArgumentException>(() => custom.TrainStep(x, labels[..5], batch)).Message);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => custom.EvaluateLoss(x, [0, 2, 1, 3, 0, 2], batch));
        Assert.Contains("value 3 at position 3 is outside [0, 3)", ex.Message);
    }

    [Fact]
    public void AFocalLossMethod_MatchesTheSameMethodOnEagerTensors_AndTrainsWithTheTrainer()
    {
        using var net = new FocalNet(seed: 9);
        const int batch = 7;
        var x = CompiledVsEagerTests.RandomData(batch * 6, 10);
        int[] labels = [2, 0, 1, 1, 0, 2, 2];
        net.Parameters.ZeroGradients();
        Tensor loss;
        using (Eager.Training())
        {
            loss = net.Focal(net.ForwardEager(new Tensor((float[])x.Clone(), batch, 6)), new Tensor(labels.Select(l => (float)l).ToArray(), batch)).Mean();
            loss.Backward();
        }
        var eager = Gradients(net.Parameters);
        Assert.Equal(loss.Data[0], net.TrainStep(x, labels, batch), 6);
        var compiled = Gradients(net.Parameters);
        for (int p = 0; p < eager.Length; p++)
            for (int i = 0; i < eager[p].Length; i++) Assert.True(Math.Abs(eager[p][i] - compiled[p][i]) < 1e-6, $"{net.Parameters.Parameters[p].Name}[{i}]: eager {eager[p][i]}, compiled {compiled[p][i]}");
        Assert.Contains(compiled, g => g.Any(v => v != 0));

        // The Trainer takes it as any classifier: three separable classes are learnt.
        var r = new Rng(11);
        int n = 300;
        var data = new float[n * 6];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            y[i] = i % 3;
            for (int j = 0; j < 6; j++) data[i * 6 + j] = r.NextFloat() - 0.5f + (j / 2 == y[i] ? 1f : 0f);
        }
        var history = new Compiled.Nets.Training.Trainer(net, new Compiled.Nets.Training.AdamW(net.Parameters, 1e-2f), new Compiled.Nets.Training.TrainerOptions { Epochs = 5 })
            .Fit(new Compiled.Nets.Data.DataLoader(new Compiled.Nets.Data.Dataset(data, y, [6], 3), 32, seed: 1), null);
        Assert.True(history[^1].TrainAccuracy > 0.9, $"train accuracy {history[^1].TrainAccuracy:P1}");
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss / 2, $"focal loss {history[0].TrainLoss:F4} → {history[^1].TrainLoss:F4}");
    }

    [Fact]
    public void LossMethodsAmongSeveralOutputs_TrainAsTheBuiltInLossesTheyRestate()
    {
        using var builtIn = new TwoHeadMseNet(seed: 12);
        using var boxMethod = new TwoHeadMethodNet(seed: 12);
        using var digitMethod = new TwoHeadClassMethodNet(seed: 12);
        const int batch = 5;
        var x = CompiledVsEagerTests.RandomData(batch * 64, 13);
        var box = CompiledVsEagerTests.RandomData(batch * 4, 14).Select(v => 0.5f + 0.5f * v).ToArray();
        int[] labels = [2, 0, 1, 1, 0];
        float[] lb = new float[2], lm = new float[2], lc = new float[2];
        float[] db = new float[batch * 3], dm = new float[batch * 3], bb = new float[batch * 4], bm = new float[batch * 4];
        float expected = builtIn.TrainStep(x, labels, box, batch, db, bb, lb);
        Assert.Equal(expected, boxMethod.TrainStep(x, labels, box, batch, dm, bm, lm), 6);
        Assert.Equal(expected, digitMethod.TrainStep(x, labels, box, batch, losses: lc), 6);
        Assert.Equal(db, dm);
        Assert.Equal(bb, bm);
        for (int i = 0; i < 2; i++) { Assert.Equal(lb[i], lm[i], 6); Assert.Equal(lb[i], lc[i], 6); }
        var g = Gradients(builtIn.Parameters);
        foreach (var other in new[] { Gradients(boxMethod.Parameters), Gradients(digitMethod.Parameters) })
            for (int p = 0; p < g.Length; p++)
                for (int i = 0; i < g[p].Length; i++) Assert.True(Math.Abs(g[p][i] - other[p][i]) < 1e-6, $"{builtIn.Parameters.Parameters[p].Name}[{i}]: built-in {g[p][i]}, method {other[p][i]}");

        // Evaluation runs the method too, and fills every output.
        float[] e = new float[2], em = new float[2], ec = new float[2], bme = new float[batch * 4];
        float evaluated = builtIn.EvaluateLoss(x, labels, box, batch, losses: e);
        Assert.Equal(evaluated, boxMethod.EvaluateLoss(x, labels, box, batch, box: bme, losses: em), 6);
        Assert.Equal(evaluated, digitMethod.EvaluateLoss(x, labels, box, batch, losses: ec), 6);
        boxMethod.Forward(x, batch, dm, bm);
        Assert.Equal(bm, bme);
        for (int i = 0; i < 2; i++) { Assert.Equal(e[i], em[i], 6); Assert.Equal(e[i], ec[i], 6); }

        // Through IMultiNetwork, as the Trainer reaches it: the targets are named after their outputs.
        IMultiNetwork multi = digitMethod;
        Assert.Equal(["digitLabels", "boxTargets"], multi.Losses.Select(l => l.Targets.Name));
        Assert.Equal(("CustomLoss", true, 1), (multi.Losses[0].Loss, multi.Losses[0].Targets.IsInteger, multi.Losses[0].Targets.Size));
    }
}
