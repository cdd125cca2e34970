using MtlMoe.Engine;
using MtlMoe.Engine.IO.Onnx;

namespace MtlMoe.Model.Backbone;

/// <summary>What <see cref="OnnxResNetImport.Import"/> found: torchvision-named weights and the architecture they form.</summary>
/// <param name="Weights">name → CPU tensor (the caller disposes them).</param>
/// <param name="StageBlocks">Basic blocks per stage.</param>
/// <param name="StageWidths">Output channels per stage.</param>
/// <param name="InputName">The graph input the stem convolves.</param>
/// <param name="OutputName">The pooled features' value name.</param>
public sealed record OnnxResNetWeights(Dictionary<string, Tensor> Weights, int[] StageBlocks, int[] StageWidths, string InputName, string OutputName);

/// <summary>
/// Maps an ONNX ResNet made of basic blocks (a 7×7 stride-2 stem conv + BN + ReLU + 3×3 stride-2 max-pool, then
/// blocks conv3×3–BN–ReLU–conv3×3–BN + shortcut (identity, or 1×1 conv + BN) → Add → ReLU, then an average pool)
/// onto torchvision's names by walking the graph, not by trusting initializer names: each Conv's weight becomes
/// <c>…convN.weight</c>, the BatchNormalization consuming it <c>…bnN.weight/bias/running_mean/running_var</c>, a
/// shortcut's conv and BN <c>…downsample.0/1</c>; a block whose first conv has stride 2 starts the next stage.
/// Anything else — another op, a conv with a bias, groups or dilation, padding that differs from torchvision's at
/// even input sizes, a batch-norm ε other than 1e-5 — is refused with an <see cref="OnnxFormatException"/> naming
/// the file and the node.
/// </summary>
public static class OnnxResNetImport
{
    private static readonly string[] SupportedOps = ["Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "AveragePool", "GlobalAveragePool"];

    /// <summary>Imports <paramref name="model"/>'s weights (see the class summary).</summary>
    public static OnnxResNetWeights Import(OnnxModel model)
    {
        var walker = new Walker(model);
        try { return walker.Run(); }
        catch { foreach (var t in walker.Weights.Values) t.Dispose(); throw; }
    }

    private sealed class Walker(OnnxModel model)
    {
        private readonly OnnxGraph _g = model.Graph;
        private readonly Dictionary<string, List<OnnxNode>> _consumers = BuildConsumers(model.Graph);
        public Dictionary<string, Tensor> Weights { get; } = new(StringComparer.Ordinal);

        private static Dictionary<string, List<OnnxNode>> BuildConsumers(OnnxGraph g)
        {
            var d = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
            foreach (var n in g.Nodes)
                foreach (var i in n.Inputs)
                    if (i.Length > 0) (d.TryGetValue(i, out var l) ? l : d[i] = new()).Add(n);
            return d;
        }

        private OnnxFormatException Bad(string what) => new($"onnx file '{model.Path}': {what}");

        public OnnxResNetWeights Run()
        {
            foreach (var n in _g.Nodes)
                if (!SupportedOps.Contains(n.OpType) || n.Domain is not ("" or "ai.onnx"))
                    throw Bad($"{n} is not supported by the ResNet importer (supported ops: {string.Join(", ", SupportedOps)})");
            var inputs = _g.Inputs.Where(i => !_g.Initializers.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1) throw Bad($"expected one image input, found {inputs.Count} ({string.Join(", ", inputs.Select(i => i.Name))})");
            string x = inputs[0].Name;

            var stem = Single(x, "the image input");
            ConvWeight(stem, "conv1", kernel: 7, stride: 2, padBegin: 3);
            string s = Norm(Single(stem.Outputs[0], stem.ToString()), "bn1");
            s = Expect(Single(s, "bn1"), "Relu").Outputs[0];
            var pool = Expect(Single(s, "the stem's ReLU"), "MaxPool");
            CheckWindow(pool, kernel: 3, stride: 2, padBegin: 1);
            x = pool.Outputs[0];

            var blocks = new List<int>();
            var widths = new List<int>();
            while (true)
            {
                var users = Users(x);
                if (users.Count == 1 && users[0].OpType is "AveragePool" or "GlobalAveragePool")
                {
                    if (blocks.Count == 0) throw Bad("the graph has no residual blocks");
                    return new OnnxResNetWeights(Weights, blocks.ToArray(), widths.ToArray(), inputs[0].Name, users[0].Outputs[0]);
                }
                x = Block(x, users, blocks, widths);
            }
        }

        // One basic block starting at value x; returns the block's output value.
        private string Block(string x, List<OnnxNode> users, List<int> blocks, List<int> widths)
        {
            var convs = users.Where(u => u.OpType == "Conv").ToList();
            var conv1 = convs.FirstOrDefault(c => KernelOf(c) == 3) ?? throw Bad($"value '{x}' feeds no 3×3 Conv (a residual block's first conv was expected)");
            var down = convs.FirstOrDefault(c => KernelOf(c) == 1);
            if (convs.Count != (down is null ? 1 : 2) || users.Count != convs.Count + (down is null ? 1 : 0))
                throw Bad($"value '{x}' is used by {string.Join(", ", users)}; a basic block uses it in a 3×3 conv and either an Add or a 1×1 conv");
            int stride = (int)conv1.Ints("strides", [1, 1])[0];
            int channels = (int)_g.Initializers[conv1.Inputs[1]].Dims[0];
            bool newStage = blocks.Count == 0 || stride == 2 || channels != widths[^1];
            if (newStage) { blocks.Add(0); widths.Add(channels); }
            string prefix = $"layer{blocks.Count}.{blocks[^1]}.";
            blocks[^1]++;

            ConvWeight(conv1, prefix + "conv1", kernel: 3, stride: stride, padBegin: 1);
            string v = Norm(Single(conv1.Outputs[0], conv1.ToString()), prefix + "bn1");
            v = Expect(Single(v, prefix + "bn1"), "Relu").Outputs[0];
            var conv2 = Expect(Single(v, prefix + "bn1's ReLU"), "Conv");
            ConvWeight(conv2, prefix + "conv2", kernel: 3, stride: 1, padBegin: 1);
            string main = Norm(Single(conv2.Outputs[0], conv2.ToString()), prefix + "bn2");
            var add = Expect(Single(main, prefix + "bn2"), "Add");
            string shortcut = add.Inputs.Length == 2 ? add.Inputs[main == add.Inputs[0] ? 1 : 0] : throw Bad($"{add} does not have two inputs");
            if (down is not null)
            {
                ConvWeight(down, prefix + "downsample.0", kernel: 1, stride: stride, padBegin: 0);
                string d = Norm(Single(down.Outputs[0], down.ToString()), prefix + "downsample.1");
                if (d != shortcut) throw Bad($"{add} does not add the 1×1 shortcut of {down}");
            }
            else if (shortcut != x) throw Bad($"{add} adds '{shortcut}', not the block input '{x}'");
            return Expect(Single(add.Outputs[0], add.ToString()), "Relu").Outputs[0];
        }

        private List<OnnxNode> Users(string value) => _consumers.TryGetValue(value, out var l) ? l : [];

        private OnnxNode Single(string value, string after)
        {
            var u = Users(value);
            if (u.Count != 1) throw Bad($"the output of {after} ('{value}') is used by {u.Count} nodes ({string.Join(", ", u)}); the ResNet layout needs exactly one");
            return u[0];
        }

        private OnnxNode Expect(OnnxNode n, string op) => n.OpType == op ? n : throw Bad($"{n} where a {op} was expected");

        private static long KernelOf(OnnxNode conv) => conv.Ints("kernel_shape", [0])[0];

        private OnnxTensor Initializer(OnnxNode n, int input, string role)
        {
            if (n.Inputs.Length <= input || !_g.Initializers.TryGetValue(n.Inputs[input], out var t))
                throw Bad($"{n}: its {role} (input {input}) is not an initializer");
            if (t.DType != DType.Float32) throw Bad($"{n}: its {role} is {t.SourceType}, not a float tensor");
            return t;
        }

        private void Add(string name, OnnxTensor t, int[]? shape = null)
        {
            if (!Weights.TryAdd(name, DisposeScope.Outside(() => Tensor.FromArray((float[])t.Floats.Clone(), shape ?? t.Shape))))
                throw Bad($"two nodes map to '{name}'");
        }

        private void ConvWeight(OnnxNode conv, string name, int kernel, int stride, int padBegin)
        {
            Expect(conv, "Conv");
            if (conv.Inputs.Length > 2 && conv.Inputs[2].Length > 0) throw Bad($"{conv} has a bias; torchvision's ResNet convs have none");
            if (conv.Int("group", 1) != 1) throw Bad($"{conv} is a grouped convolution");
            if (conv.Ints("dilations", [1, 1]).Any(d => d != 1)) throw Bad($"{conv} is dilated");
            CheckWindow(conv, kernel, stride, padBegin);
            var w = Initializer(conv, 1, "weight");
            if (w.Dims.Length != 4 || w.Dims[2] != kernel || w.Dims[3] != kernel) throw Bad($"{conv}: weight [{string.Join(", ", w.Dims)}] is not a {kernel}×{kernel} kernel");
            Add(name + ".weight", w);
        }

        // Window op attributes; CNTK's asymmetric pads (begin p, end p − 1 at stride 2) sample exactly the pixels
        // torchvision's symmetric ones do at even input sizes, so both are accepted.
        private void CheckWindow(OnnxNode n, int kernel, int stride, int padBegin)
        {
            var k = n.Ints("kernel_shape", []);
            var s = n.Ints("strides", [1, 1]);
            var p = n.Ints("pads", [0, 0, 0, 0]);
            string autoPad = n.String("auto_pad", "NOTSET");
            if (k.Length != 2 || k[0] != kernel || k[1] != kernel) throw Bad($"{n}: kernel [{string.Join(", ", k)}], expected {kernel}×{kernel}");
            if (s.Length != 2 || s[0] != stride || s[1] != stride) throw Bad($"{n}: strides [{string.Join(", ", s)}], expected {stride}");
            if (autoPad != "NOTSET") throw Bad($"{n}: auto_pad {autoPad} is not supported (explicit pads are)");
            bool symmetric = p.Length == 4 && p.All(v => v == padBegin);
            bool cntk = p.Length == 4 && stride == 2 && p[0] == padBegin && p[1] == padBegin && p[2] == Math.Max(0, padBegin - 1) && p[3] == Math.Max(0, padBegin - 1);
            if (!symmetric && !cntk) throw Bad($"{n}: pads [{string.Join(", ", p)}] differ from torchvision's {padBegin} on every side");
        }

        private string Norm(OnnxNode bn, string name)
        {
            Expect(bn, "BatchNormalization");
            float eps = bn.Float("epsilon", 1e-5f);
            if (Math.Abs(eps - 1e-5f) > 1e-9f) throw Bad($"{bn}: epsilon {eps} (our batch-norm uses 1e-5)");
            if (bn.Int("spatial", 1) != 1) throw Bad($"{bn}: non-spatial batch-norm is not supported");
            if (bn.Outputs.Length != 1 && bn.Outputs.Skip(1).Any(o => o.Length > 0)) throw Bad($"{bn} has training outputs");
            Add(name + ".weight", Initializer(bn, 1, "scale"));
            Add(name + ".bias", Initializer(bn, 2, "bias"));
            Add(name + ".running_mean", Initializer(bn, 3, "mean"));
            Add(name + ".running_var", Initializer(bn, 4, "variance"));
            Weights[name + ".num_batches_tracked"] = DisposeScope.Outside(() => Tensor.Zeros([], DType.Int64));
            return bn.Outputs[0];
        }
    }
}
