using Compiled.Nets.Bench;

// `summary` (default): GEMM GFLOPS, % of the measured FMA peak and libtorch side by side (self-timed medians).
// `step`: the ConvNet's training step and inference (1×28×28 and 3×32×32) vs libtorch, allocations, peak memory, heavy kernels.
// `gemm [ours|blas|both] [passes]`: summary shapes only, no libtorch; `gemm one M N K ta tb secs`: one shape.
// `peak`: the FMA peak on one and two cores and the CPU's 512- vs 256-bit FMA rate only.
// `serve`: batch-1 latency of the ConvNet after 0, 1 and 10 ms of idle time, ours and libtorch alternating.
// `bert`: one bert-base encoder layer's training step and inference (batch 16×128, padded) vs libtorch.
// `depthwise`: a MobileNet-style depthwise 3×3 + pointwise 1×1 block's training step and inference vs libtorch.
// `recurrent`: a bidirectional LSTM and GRU layer's training step and inference (batch 16×128) vs libtorch's nn.LSTM/nn.GRU.
// `concurrent [seconds]`: one ConvNet instance serving 1, 2 and 4 threads at once (requests/s), and the pool's cost to a lone caller.
// `onnx [model.safetensors]`: the ConvNet exported to ONNX and run by ONNX Runtime, against the compiled network, batch 1 and 64.
// `tokenize [rounds]`: BERT tokenization throughput on the shipped emails, ours vs Hugging Face's Rust library (Node).
// `allreduce` (under mpirun -np N): one data-parallel step's gradient allreduce for the ConvNet and bert-base.
// `bdn [BenchmarkDotNet args]`: the BenchmarkDotNet suites (e.g. `-- bdn --filter '*'`).
return args.FirstOrDefault() switch
{
    "step" => Step.Run(args),
    "serve" => Step.Serve(),
    "gemm" => GemmTimes.Run(args[1..]),
    "bert" => BertLayerBench.Run(),
    "recurrent" => RecurrentBench.Run(),
    "depthwise" => DepthwiseBench.Run(),
    "peak" => Peak.Report(),
    "tokenize" => TokenizeBench.Run(args),
    "onnx" => OnnxBench.Run(args),
    "concurrent" => ConcurrentBench.Run(args),
    "allreduce" => AllreduceBench.Run(),
    "bdn" => Bdn.Run(args[1..]),
    _ => Summary.Run(args),
};
