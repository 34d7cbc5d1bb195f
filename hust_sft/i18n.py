"""Every human-readable string of the product: one entry per key, its languages side by side.

The CLI `--help`, the Gradio labels and help texts, and user-facing messages all read from here, so a
label is changed in one place, in both languages at once (as LLaMA-Factory's `webui/locales.py` keeps each
element's languages together). Keys: `field.<setting>.label` / `field.<setting>.help` for settings,
free-form dotted keys for everything else. Every entry has every language of `LANGS` with the same
{placeholders} (tests/test_ui_train.py checks); `t` falls back to en for an unknown language, and a missing
en string is a bug and raises KeyError. `DEFAULT_LANG` is the page's first language and every `lang`
parameter's default.
"""
from __future__ import annotations

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

MESSAGES: dict[str, dict[str, str]] = {
    # ---- settings (labels + one-sentence help) -------------------------------------------------
    "field.preset.help": {
        "zh": "从预设开始：'recommended'（本项目默认）或 'tutorial'（常见教程配置，用于对比）；显式参数优先。",
        "en": "Start from a named preset: 'recommended' (our defaults) or 'tutorial' (the usual blog recipe, for comparison); explicit flags still win."},
    "field.config.help": {
        "zh": "从 JSON 文件读取设置（例如之前的 run.json）；显式参数优先。",
        "en": "Read settings from a JSON file (e.g. a previous run.json); explicit flags still win."},
    "field.data.label": {
        "zh": "数据集",
        "en": "Dataset"},
    "field.data.help": {
        "zh": "本地 .jsonl/.json 文件、http(s) 链接、Hugging Face 数据集 id（hf://owner/name 或 owner/name），或 modelscope://owner/name/file。",
        "en": "Local .jsonl/.json file, http(s) URL, Hugging Face dataset id (hf://owner/name or owner/name), or modelscope://owner/name/file."},
    "field.data_file.label": {
        "zh": "Hub 数据集中的文件",
        "en": "File in the Hub dataset"},
    "field.data_file.help": {
        "zh": "Hub 数据集包含多个文件时，指定读取哪一个。",
        "en": "For a Hub dataset with several files: which file to read."},
    "field.data_split.label": {
        "zh": "Hub 数据集划分",
        "en": "Hub dataset split"},
    "field.data_split.help": {
        "zh": "Hub 数据集读取哪个 split（默认 train）。",
        "en": "For a Hub dataset: which split to read (default: train)."},
    "field.strict.label": {
        "zh": "严格校验",
        "en": "Strict validation"},
    "field.strict.help": {
        "zh": "发现坏记录即失败并列出全部问题，而不是跳过坏记录。",
        "en": "Fail on the first bad record report (listing all of them) instead of skipping bad records."},
    "field.val_ratio.label": {
        "zh": "验证集比例",
        "en": "Validation share"},
    "field.val_ratio.help": {
        "zh": "用于计算验证损失的问题比例；按问题的稳定哈希划分。",
        "en": "Share of questions held out for validation loss; assigned by a stable hash of the question."},
    "field.test_ratio.label": {
        "zh": "测试集比例",
        "en": "Test share"},
    "field.test_ratio.help": {
        "zh": "用于评测的问题比例；从不参与训练，多次运行保持不变。",
        "en": "Share of questions held out for evaluation; never trained on, stable across runs."},
    "field.system_prompt.label": {
        "zh": "系统提示词",
        "en": "System prompt"},
    "field.system_prompt.help": {
        "zh": "训练、对话和评测统一使用的同一个系统提示词。",
        "en": "The one system prompt used for training, chat and evaluation alike."},
    "field.max_length.label": {
        "zh": "单条样本最大 token 数",
        "en": "Max tokens per sample"},
    "field.max_length.help": {
        "zh": "超长对话按截断策略处理，并在报告中计数。",
        "en": "Longer conversations are handled by the truncation policy and counted in the report."},
    "field.truncation.label": {
        "zh": "超长样本处理",
        "en": "Too-long samples"},
    "field.truncation.help": {
        "zh": "'drop' 跳过超长对话；'truncate' 保留放得下的轮次，丢弃其余轮次。",
        "en": "'drop' skips conversations longer than the limit; 'truncate' keeps the turns that fit and drops the rest."},
    "field.model.label": {
        "zh": "基座模型",
        "en": "Base model"},
    "field.model.help": {
        "zh": "Hugging Face 模型 id，或包含因果语言模型及其分词器的本地目录。",
        "en": "Hugging Face model id or a local directory with a causal LM and its tokenizer."},
    "field.dtype.label": {
        "zh": "权重精度",
        "en": "Weights dtype"},
    "field.dtype.help": {
        "zh": "'auto'：硬件支持时用 bf16，较老的 CUDA 显卡（T4）用 fp16，CPU 用 fp32。",
        "en": "'auto' picks bf16 where the hardware supports it, fp16 on older CUDA GPUs (T4), fp32 on CPU."},
    "field.device.label": {
        "zh": "设备",
        "en": "Device"},
    "field.device.help": {
        "zh": "'auto'：有 CUDA 用 CUDA，否则 Apple MPS，否则 CPU。",
        "en": "'auto' uses CUDA when present, else Apple MPS, else the CPU."},
    "field.lora_r.label": {
        "zh": "LoRA 秩 r",
        "en": "LoRA rank r"},
    "field.lora_r.help": {
        "zh": "低秩更新的秩；越高能记住越多事实，占用更多显存。",
        "en": "Rank of the low-rank update; higher learns more facts at more memory."},
    "field.lora_alpha.label": {
        "zh": "LoRA alpha",
        "en": "LoRA alpha"},
    "field.lora_alpha.help": {
        "zh": "更新的缩放系数（alpha / r；启用 rsLoRA 时为 alpha / sqrt(r)）。",
        "en": "Scale of the update (alpha / r, or alpha / sqrt(r) with rsLoRA)."},
    "field.lora_dropout.label": {
        "zh": "LoRA dropout",
        "en": "LoRA dropout"},
    "field.lora_dropout.help": {
        "zh": "训练时对 LoRA 输入施加的 dropout。0（PEFT 与 LLaMA-Factory 的默认值）最快、最省内存：非零值会为每个 LoRA 层保存一份与输入同样大小的掩码供反向传播使用。",
        "en": "Dropout on the LoRA input during training. 0 (the PEFT and LLaMA-Factory default) is fastest and leanest: any other value keeps a full-size mask per LoRA layer for the backward pass."},
    "field.target_modules.label": {
        "zh": "目标模块",
        "en": "Target modules"},
    "field.target_modules.help": {
        "zh": "预设 'q_proj,v_proj'、'attention'（q,k,v,o）或 'all-linear'，也可填逗号分隔的模块名。",
        "en": "Preset 'q_proj,v_proj', 'attention' (q,k,v,o) or 'all-linear', or a comma-separated list of module names."},
    "field.use_rslora.label": {
        "zh": "rsLoRA",
        "en": "rsLoRA"},
    "field.use_rslora.help": {
        "zh": "按 alpha/sqrt(r) 缩放，使高秩训练更稳定。",
        "en": "Scale by alpha/sqrt(r), which keeps high ranks stable."},
    "field.use_dora.label": {
        "zh": "DoRA",
        "en": "DoRA"},
    "field.use_dora.help": {
        "zh": "权重分解 LoRA：分别学习幅度和方向；每步更慢。",
        "en": "Weight-decomposed LoRA: learns magnitude and direction separately; slower per step."},
    "field.grad_accum.label": {
        "zh": "梯度累积",
        "en": "Gradient accumulation"},
    "field.grad_accum.help": {
        "zh": "原理：每次只前向/反向一个小批次，把梯度累加若干次后才更新一次参数，所以同时占内存的激活只有小批次那么多，有效批次不变。实测（bench/memory_techniques.py，2 vCPU，批次 2 × 累积 4 对 8 × 1）：峰值内存 ×0.42，时间 ×1.08。",
        "en": "How it works: forward and backward one small batch at a time and add up the gradients over several of them before each update, so only a small batch's activations are in memory while the effective batch stays the same. Measured (bench/memory_techniques.py, 2 vCPU, batch 2 × 4 vs 8 × 1): peak memory ×0.42, time ×1.08."},
    "field.mixed_precision.label": {
        "zh": "混合精度",
        "en": "Mixed precision"},
    "field.mixed_precision.help": {
        "zh": "原理：前向和反向在 16 位（bf16 或 fp16）中计算，主权重与优化器仍是 32 位，激活占用约减半；在有 16 位硬件的 GPU 上也更快。auto 只在硬件支持时开启。实测（bench/memory_techniques.py，2 vCPU 无 avx512_bf16，强制 bf16）：峰值内存 ×0.99，时间 ×38（软件模拟 bf16：在这种 CPU 上别开）。",
        "en": "How it works: the forward and backward passes compute in 16-bit (bf16 or fp16) while the master weights and optimizer stay 32-bit, so activations take about half the memory, and GPUs with 16-bit units run faster. auto turns it on only where the hardware has it. Measured (bench/memory_techniques.py, 2 vCPU without avx512_bf16, bf16 forced): peak memory ×0.99, time ×38 (emulated bf16: keep it off on such a CPU)."},
    "field.gradient_checkpointing.label": {
        "zh": "梯度检查点",
        "en": "Gradient checkpointing"},
    "field.gradient_checkpointing.help": {
        "zh": "原理：前向时只保存每层的输入，反向传播时重新计算层内激活，而不是一直保存它们；层越多、序列越长省得越多，代价是多一次前向。实测（bench/memory_techniques.py，2 vCPU，2 层微型模型，峰值被输出层占满）：峰值内存 ×1.00，时间 ×1.07；在 24 层的真实模型上省的是各层激活。",
        "en": "How it works: the forward pass keeps only each layer's input and the backward pass recomputes the activations inside the layer instead of storing them; it saves more with more layers and longer sequences, for one more forward pass. Measured (bench/memory_techniques.py, 2 vCPU, a 2-layer tiny model whose peak is the output layer's): peak memory ×1.00, time ×1.07; on the real 24-layer model it saves the layers' activations."},
    "field.quantization.label": {
        "zh": "量化基座（QLoRA）",
        "en": "Quantized base (QLoRA)"},
    "field.quantization.help": {
        "zh": "原理：冻结的基座权重以 4 位（NF4）或 8 位存放，计算时逐块反量化，只有 LoRA 权重是全精度并参与训练（QLoRA），权重显存减为约 1/4 或 1/2。仅限 CUDA（bitsandbytes）；本项目还没有在 GPU 上测过（bench/memory_techniques.py 在有 GPU 时会加测 4bit/8bit）。",
        "en": "How it works: the frozen base weights are stored in 4-bit (NF4) or 8-bit and dequantized block by block for each matrix product; only the LoRA weights are full precision and trained (QLoRA), so weight memory drops to about 1/4 or 1/2. CUDA only (bitsandbytes); not measured on a GPU yet (bench/memory_techniques.py adds 4bit/8bit arms where CUDA is available)."},
    "field.answer_only_head.label": {
        "zh": "仅在回答位置计算输出层",
        "en": "LM head on answers only"},
    "field.answer_only_head.help": {
        "zh": "原理：只在回答的位置计算 151,936 维的输出层和损失（每次几百个位置），问题和填充位置的 logits 从不生成——它们本来就不参与学习。实测（bench/memory_techniques.py，2 vCPU）：峰值内存 ×0.36，时间 ×0.88。",
        "en": "How it works: the 151,936-wide output layer and the loss are computed only at answer positions (a few hundred at a time); the question's and padding's logits, which nothing learns from, are never made. Measured (bench/memory_techniques.py, 2 vCPU): peak memory ×0.36, time ×0.88."},
    "field.output.label": {
        "zh": "运行目录",
        "en": "Run directory"},
    "field.output.help": {
        "zh": "适配器、events.jsonl 和 run.json 的保存位置（默认：运行目录下新建文件夹）。",
        "en": "Where the adapter, events.jsonl and run.json go (default: a new folder under the runs directory)."},
    "field.runs_dir.label": {
        "zh": "运行总目录",
        "en": "Runs directory"},
    "field.runs_dir.help": {
        "zh": "每次运行一个子文件夹。",
        "en": "Folder that holds one sub-folder per run."},
    "field.epochs.label": {
        "zh": "训练轮数",
        "en": "Epochs"},
    "field.epochs.help": {
        "zh": "遍历训练集的次数。",
        "en": "Passes over the training split."},
    "field.max_steps.label": {
        "zh": "最大步数",
        "en": "Max steps"},
    "field.max_steps.help": {
        "zh": "达到该优化步数后停止（-1：按轮数）。",
        "en": "Stop after this many optimizer steps (-1: use epochs)."},
    "field.batch_size.label": {
        "zh": "批大小",
        "en": "Batch size"},
    "field.batch_size.help": {
        "zh": "每个设备每次前向的样本数；有效批次 = 批大小 × 梯度累积 × 设备数。",
        "en": "Samples per device per forward pass; effective batch = batch size x gradient accumulation x devices."},
    "field.lr.label": {
        "zh": "学习率",
        "en": "Learning rate"},
    "field.lr.help": {
        "zh": "LoRA 权重的峰值学习率。",
        "en": "Peak learning rate of the LoRA weights."},
    "field.lr_scheduler.label": {
        "zh": "学习率调度",
        "en": "LR schedule"},
    "field.lr_scheduler.help": {
        "zh": "预热之后学习率如何衰减。",
        "en": "How the learning rate decays after warm-up."},
    "field.warmup_ratio.label": {
        "zh": "预热比例",
        "en": "Warm-up share"},
    "field.warmup_ratio.help": {
        "zh": "学习率从 0 上升所占的步数比例。",
        "en": "Share of steps over which the learning rate rises from 0."},
    "field.weight_decay.label": {
        "zh": "权重衰减",
        "en": "Weight decay"},
    "field.weight_decay.help": {
        "zh": "LoRA 权重的 L2 惩罚。",
        "en": "L2 penalty on the LoRA weights."},
    "field.seed.label": {
        "zh": "随机种子",
        "en": "Seed"},
    "field.seed.help": {
        "zh": "初始化、打乱顺序和 dropout 的随机种子。",
        "en": "Random seed for initialisation, shuffling and dropout."},
    "field.logging_steps.label": {
        "zh": "每 N 步记录",
        "en": "Log every N steps"},
    "field.logging_steps.help": {
        "zh": "向 events.jsonl 追加一行的频率。",
        "en": "How often a line is appended to events.jsonl."},
    "field.save_steps.label": {
        "zh": "每 N 步保存检查点",
        "en": "Checkpoint every N steps"},
    "field.save_steps.help": {
        "zh": "0：只在每轮结束时保存检查点。",
        "en": "0: checkpoint at the end of each epoch only."},
    "field.eval_each_epoch.label": {
        "zh": "每轮计算验证损失",
        "en": "Validation loss each epoch"},
    "field.eval_each_epoch.help": {
        "zh": "每轮结束后在验证集上计算损失。",
        "en": "Computes the loss on the validation split after every epoch."},
    "field.early_stopping_patience.label": {
        "zh": "早停耐心值",
        "en": "Early-stopping patience"},
    "field.early_stopping_patience.help": {
        "zh": "验证损失连续这么多次没有低于目前最低值就停止训练（0：不提前停止）。无论是否早停，保存的适配器都是验证损失最低的那一轮。",
        "en": "Stop after this many validation losses in a row that are not lower than the best so far (0: never stop early). Either way the adapter kept is the epoch with the lowest validation loss."},
    "field.group_by_length.label": {
        "zh": "按长度分组",
        "en": "Group by length"},
    "field.group_by_length.help": {
        "zh": "把长度相近的样本放在同一批，减少填充计算。",
        "en": "Batches samples of similar length together so little padding is computed."},
    "field.report_to.label": {
        "zh": "实验记录",
        "en": "Experiment tracker"},
    "field.report_to.help": {
        "zh": "把损失同时记到实验记录工具：'trackio'（本地存储在 RUN_DIR/trackio，用 `TRACKIO_DIR=RUN_DIR/trackio trackio show` 查看）、'tensorboard'（事件文件在 RUN_DIR/tensorboard）、'wandb'（需 `pip install wandb` 并登录），或 'none'。",
        "en": "Also log losses to a tracker: 'trackio' (a local store in RUN_DIR/trackio; view it with `TRACKIO_DIR=RUN_DIR/trackio trackio show`), 'tensorboard' (event files in RUN_DIR/tensorboard), 'wandb' (needs `pip install wandb` and a login), or 'none'."},
    "field.resume.label": {
        "zh": "断点续训",
        "en": "Resume"},
    "field.resume.help": {
        "zh": "从运行目录中最后一个检查点继续训练。",
        "en": "Continue from the last checkpoint in the run directory."},
    "field.max_new_tokens.label": {
        "zh": "最多生成 token 数",
        "en": "Max new tokens"},
    "field.max_new_tokens.help": {
        "zh": "生成回答的最大长度。",
        "en": "Longest answer to generate."},
    "field.temperature.label": {
        "zh": "温度",
        "en": "Temperature"},
    "field.temperature.help": {
        "zh": "0 = 贪心解码（结果确定）；越高回答越多样。",
        "en": "0 = greedy (deterministic); higher = more varied answers."},
    "field.top_p.label": {
        "zh": "Top-p",
        "en": "Top-p"},
    "field.top_p.help": {
        "zh": "只从累计概率达到 p 的最小词集合中采样（温度 > 0 时）。",
        "en": "Sample only from the smallest set of tokens whose probability adds up to p (when temperature > 0)."},
    "field.repetition_penalty.label": {
        "zh": "重复惩罚",
        "en": "Repetition penalty"},
    "field.repetition_penalty.help": {
        "zh": "大于 1 时抑制重复相同的词。",
        "en": "Values above 1 discourage repeating the same tokens."},
    "field.adapter.label": {
        "zh": "适配器",
        "en": "Adapter"},
    "field.adapter.help": {
        "zh": "运行目录、适配器目录或 Hub id；可重复以比较多个。",
        "en": "A run directory, an adapter directory or a Hub id; repeat to compare several."},
    "field.split.label": {
        "zh": "留出集",
        "en": "Held-out split"},
    "field.split.help": {
        "zh": "回答哪一个留出集：test（报告结果）或 validation（选择设置时用，不碰测试集）。",
        "en": "Which held-out split to answer: test (to report) or validation (to choose settings without looking at the test split)."},
    "field.ood.label": {
        "zh": "域外测试集",
        "en": "Out-of-domain set"},
    "field.ood.help": {
        "zh": "可选的第二个问答文件（任意支持的格式），用于检查遗忘或答成别的学校的规定。",
        "en": "Optional second Q&A file (any supported format) to check for forgetting or wrong-school answers."},
    "field.limit.label": {
        "zh": "数量上限",
        "en": "Limit"},
    "field.limit.help": {
        "zh": "每个集合只评测前 N 个问题（快速查看：结果另存，不会覆盖该运行的完整评测）。",
        "en": "Evaluate only the first N questions of each set (a quick look: written beside the run's full evaluation, never over it)."},
    "field.bootstrap.label": {
        "zh": "自助重采样次数",
        "en": "Bootstrap resamples"},
    "field.bootstrap.help": {
        "zh": "计算（微调 − 基座）配对 95% 置信区间的重采样次数。",
        "en": "Resamples for the paired 95% confidence interval of tuned - base."},
    "field.arms.label": {
        "zh": "对比组",
        "en": "Arms"},
    "field.arms.help": {
        "zh": "要对比的回答方式：base（基座）、base+retrieval（基座+检索）、tuned（每个适配器）、tuned+retrieval（微调+检索）。检索使用该运行自己的索引（没有时用其训练集构建）。",
        "en": "Ways of answering to compare: base, base+retrieval, tuned (each adapter), tuned+retrieval. Retrieval uses the run's own index (built from its training split if it has none)."},
    "field.train_sample.label": {
        "zh": "训练集抽样题数",
        "en": "Training questions"},
    "field.train_sample.help": {
        "zh": "另外回答这么多道训练集问题（固定抽样），把记忆程度与留出集得分对比；0 表示不抽。",
        "en": "Also answer this many training questions (a fixed sample) to compare memorisation with the held-out score; 0 = none."},
    # ---- data: sources, validation, splits, encoding (hust_sft/data) ----
    "data.encoding.at": {
        "zh": "{where}：{reason}",
        "en": "{where}: {reason}"},
    "data.encoding.not_user_last": {
        "zh": "提示必须以用户轮次结尾",
        "en": "a prompt must end with a user turn"},
    "data.encoding.no_assistant": {
        "zh": "该对话没有可学习的助手轮次",
        "en": "the conversation has no assistant turn to learn from"},
    "data.encoding.not_prefix": {
        "zh": "该模型的对话模板不会把前面的轮次渲染为整段对话的前缀，因此无法定位回答的 token；请使用按从左到右顺序渲染轮次的模型",
        "en": "the model's chat template does not render earlier turns as a prefix of the whole conversation, so answer tokens cannot be located; use a model whose template renders turns left to right"},
    "data.where.record": {
        "zh": "第 {n} 条记录",
        "en": "record {n}"},
    "data.issue.too_deep": {
        "zh": "嵌套超过 {max} 层；一条记录应是由若干轮文本组成的对象，只有几层嵌套",
        "en": "nested deeper than {max} levels; a record is an object of turns with text, a few levels deep"},
    "data.issue.bad_json": {
        "zh": "JSON 格式错误（第 {col} 列）：{error}",
        "en": "invalid JSON at column {col}: {error}"},
    "data.issue.bad_utf8": {
        "zh": "不是有效的 UTF-8：文件第 {offset} 字节（本行第 {col} 字节）为 0x{byte}；请把文件另存为 UTF-8 编码",
        "en": "not valid UTF-8: byte 0x{byte} at byte offset {offset} of the file (byte {col} of this line); save the file as UTF-8"},
    "data.issue.not_object": {
        "zh": "应为 JSON 对象 {{...}}，实际为 {got}",
        "en": "expected a JSON object {{...}}, got {got}"},
    "data.issue.missing_field": {
        "zh": "缺少该字段；应为 {expected}",
        "en": "missing; expected {expected}"},
    "data.issue.wrong_type": {
        "zh": "类型错误：应为 {expected}，实际为 {got}",
        "en": "expected {expected}, got {got}"},
    "data.issue.missing_role": {
        "zh": "该轮对话没有角色；需要 'role'（或 ShareGPT 的 'from'）字段",
        "en": "this turn has no role; expected a 'role' (or ShareGPT 'from') key"},
    "data.issue.unknown_role": {
        "zh": "未知角色 {role!r}；应为以下之一：{allowed}",
        "en": "unknown role {role!r}; expected one of: {allowed}"},
    "data.issue.empty_content": {
        "zh": "内容为空或只有空白字符",
        "en": "empty or whitespace-only text"},
    "data.issue.empty_conversation": {
        "zh": "对话中没有任何轮次",
        "en": "the conversation has no turns"},
    "data.issue.no_user": {
        "zh": "没有用户轮次；每段对话至少需要一个问题",
        "en": "no user turn; a conversation needs at least one question"},
    "data.issue.no_assistant": {
        "zh": "没有助手轮次；每段对话至少需要一个可供学习的回答",
        "en": "no assistant turn; a conversation needs at least one answer to learn from"},
    "data.issue.system_not_first": {
        "zh": "system 轮次只能出现在第一轮",
        "en": "a system turn is only allowed as the very first turn"},
    "data.issue.not_alternating": {
        "zh": "此处应为 {expected!r} 轮次，实际为 {got!r}；除可选的首个 system 轮次外，必须按 user、assistant、user…… 交替",
        "en": "expected a {expected!r} turn here, got {got!r}; after an optional first system turn, turns must alternate user, assistant, user, ..."},
    "data.issue.last_not_assistant": {
        "zh": "对话以用户轮次结尾，没有助手回答",
        "en": "the conversation ends with a user turn that has no assistant answer"},
    "data.error.empty_file": {
        "zh": "{source}：文件为空；应为每行一个 JSON 对象（.jsonl）或一个 JSON 数组（.json）",
        "en": "{source}: the file is empty; expected one JSON object per line (.jsonl) or a JSON array (.json)"},
    "data.error.bad_file": {
        "zh": "{source}：无法读取文件：",
        "en": "{source}: the file cannot be read:"},
    "data.error.unsupported_file": {
        "zh": "{source}：不支持的文件类型 {suffix!r}；应为 .jsonl 或 .json 文件",
        "en": "{source}: unsupported file type {suffix!r}; expected a .jsonl or .json file"},
    "data.error.unknown_format": {
        "zh": "{source}：无法识别格式；记录应包含 'conversations'、'messages' 或 'instruction' + 'output' 字段（第一个对象的字段为：{keys}）",
        "en": "{source}: unknown format; expected records with 'conversations', 'messages', or 'instruction' + 'output' (the first object has the keys: {keys})"},
    "data.error.unknown_format_unquoted": {
        "zh": "{source}：无法识别格式；记录应包含 'conversations'、'messages' 或 'instruction' + 'output' 字段（网址返回的内容不会在消息中引用）",
        "en": "{source}: unknown format; expected records with 'conversations', 'messages', or 'instruction' + 'output' (the content of a URL is not quoted in messages)"},
    "data.error.strict": {
        "zh": "{source}：{n} 条记录无效（已开启严格校验；关闭后将跳过这些记录）：",
        "en": "{source}: {n} invalid record(s) (strict validation is on; turn it off to skip them instead):"},
    "data.error.no_valid": {
        "zh": "{source}：{total} 条记录中没有一条有效：",
        "en": "{source}: none of the {total} records is valid:"},
    "data.error.no_train": {
        "zh": "{source}：留出验证集（{val}）和测试集（{test}）的问题后，没有剩下可用于训练的记录；请降低比例或增加数据",
        "en": "{source}: no record is left for training after holding out validation ({val}) and test ({test}) questions; lower the shares or add data"},
    "data.error.ratios": {
        "zh": "val_ratio（{val}）和 test_ratio（{test}）都不能小于 0，且两者之和必须小于 1",
        "en": "val_ratio ({val}) and test_ratio ({test}) must each be at least 0 and add up to less than 1"},
    "data.report.summary": {
        "zh": "{source}：{format} 格式，读取 {total} 条，保留 {kept} 条，跳过 {skipped} 条，去除完全重复 {duplicates} 条",
        "en": "{source}: {format} format, {total} records read, {kept} kept, {skipped} skipped, {duplicates} exact duplicates removed"},
    "data.report.counts": {
        "zh": "问题分类：{counts}",
        "en": "Problems by kind: {counts}"},
    "data.report.more": {
        "zh": "……另有 {n} 条",
        "en": "… and {n} more"},
    "data.source.error": {
        "zh": "无法从 {source} 加载数据集：{reason}\n可以改为上传文件：在界面中使用上传框，或在命令行中传入 --data path/to/file.jsonl。",
        "en": "Could not load the dataset from {source}: {reason}\nUpload the file instead: use the upload box in the UI, or pass --data path/to/file.jsonl on the command line."},
    "data.source.not_found": {
        "zh": "文件不存在",
        "en": "no such file"},
    "data.source.is_dir": {
        "zh": "这是一个文件夹；应为 .jsonl 或 .json 文件",
        "en": "this is a folder; expected a .jsonl or .json file"},
    "data.source.bad_modelscope": {
        "zh": "格式应为 modelscope://owner/name/path/to/file.jsonl（owner 和 name 只含字母、数字、'.'、'_'、'-'；文件为相对路径，不含 '..'、'.'、空段或绝对路径，也不含反斜杠）",
        "en": "expected modelscope://owner/name/path/to/file.jsonl (owner and name: letters, digits, '.', '_', '-'; the file: a relative path with no '..', '.', empty or absolute part and no backslash)"},
    "data.source.bad_hub_id": {
        "zh": "应为 Hub 数据集 id owner/name 或 hf://owner/name/path/to/file.jsonl（owner 和 name 只含字母、数字、'.'、'_'、'-'，且以字母或数字开头）",
        "en": "expected a Hub dataset id owner/name or hf://owner/name/path/to/file.jsonl (owner and name: letters, digits, '.', '_', '-', starting with a letter or digit)"},
    "data.source.bad_file": {
        "zh": "文件应为数据集内的相对路径（不含 '..'、'.'、空段或绝对路径，也不含反斜杠）",
        "en": "expected the file as a relative path inside the dataset (no '..', '.', empty or absolute part and no backslash)"},
    "data.source.bad_split": {
        "zh": "划分名只能包含字母、数字、'.'、'_' 或 '-'（例如 train）",
        "en": "expected a split name of letters, digits, '.', '_' or '-' (e.g. train)"},
    "data.source.outside_cache": {
        "zh": "下载的文件会被写到数据缓存文件夹之外，已拒绝",
        "en": "the download would be written outside the data cache folder; refused"},
    "data.source.bad_url": {
        "zh": "应为带主机名的 http:// 或 https:// 网址",
        "en": "expected an http:// or https:// URL with a host name"},
    "data.source.not_public": {
        "zh": "该网址（或其重定向）指向非公网地址（私有、回环、链路本地、组播、保留或云元数据地址）；只会从公网服务器下载",
        "en": "the URL (or a redirect) points at an address that is not public (private, loopback, link-local, multicast, reserved or cloud metadata); only public servers are fetched"},
    "data.source.too_large": {
        "zh": "文件超过 {mb} MB 的下载上限（可设置 {env} 修改）",
        "en": "the file is larger than {mb} MB, the download limit (set {env} to change it)"},
    "data.source.too_many_redirects": {
        "zh": "重定向超过 {n} 次",
        "en": "more than {n} redirects"},
    "data.source.fetch_failed": {
        "zh": "无法获取该网址（无响应、连接被拒绝或中断，或速度过慢）",
        "en": "could not fetch the URL (no answer, connection refused or broken, or too slow)"},
    "data.source.http_status": {
        "zh": "服务器返回 HTTP {status} {phrase}",
        "en": "the server answered HTTP {status} {phrase}"},
    "data.source.modelscope_error": {
        "zh": "ModelScope 表示无法提供该文件；请检查 owner、name 和文件路径",
        "en": "ModelScope answered that it cannot serve this file; check the owner, name and file path"},
    # ---- training, jobs, runs (hust_sft/training.py, hust_sft/jobs.py) ----
    "runs.error.name_type": {
        "zh": "运行名称：应为文本，实际为 {type}",
        "en": "run name: expected text, got {type}"},
    "runs.error.bad_name": {
        "zh": "运行名称 {name!r}：只保留字母、数字、'-'、'_'、'.'（并去掉开头的点）后什么都不剩；请至少包含一个字母或数字",
        "en": "run name {name!r}: nothing is left after keeping only letters, digits, '-', '_' and '.' (leading dots dropped); use at least one letter or digit"},
    "runs.error.no_free_name": {
        "zh": "{runs_dir}：找不到 {name!r} 可用的运行文件夹名",
        "en": "{runs_dir}: no free run folder name left for {name!r}"},
    "runs.error.output_exists": {
        "zh": "{path} 中已有一次运行（存在 {file}），在其中训练会覆盖它的适配器。请换一个运行名称（--output），或继续该运行（--resume，或训练页的「继续训练」）。",
        "en": "{path} already holds a run ({file} exists); training into it would overwrite its adapter. Choose another run name (--output), or resume that run (--resume, or Resume on the Train tab)."},
    "runs.error.bad_line": {
        "zh": "{path} 第 {line} 行：每行应为一个 JSON 对象（{reason}）",
        "en": "{path}, line {line}: expected one JSON object per line ({reason})"},
    "runs.error.not_object": {
        "zh": "{path} 第 {line} 行：应为 JSON 对象，实际为 {type}",
        "en": "{path}, line {line}: expected a JSON object, got {type}"},
    "runs.error.bad_json": {
        "zh": "{path}：不是有效的 JSON（{reason}）",
        "en": "{path}: not valid JSON ({reason})"},
    "runs.error.not_object_file": {
        "zh": "{path}：应为 JSON 对象，实际为 {type}",
        "en": "{path}: expected a JSON object, got {type}"},
    "settings.error.required": {
        "zh": "{name}：必须填写一个值",
        "en": "{name}: a value is required"},
    "settings.error.type": {
        "zh": "{name}：应为 {type}，实际为 {value!r}",
        "en": "{name}: expected {type}, got {value!r}"},
    "settings.error.choice": {
        "zh": "{name}：应为 {choices} 之一，实际为 {value!r}",
        "en": "{name}: expected one of {choices}, got {value!r}"},
    "settings.error.range": {
        "zh": "{name}：应在 [{lo}, {hi}] 范围内，实际为 {value}",
        "en": "{name}: expected a value in [{lo}, {hi}], got {value}"},
    "settings.error.not_finite": {
        "zh": "{name}：应为有限数值，实际为 {value}",
        "en": "{name}: expected a finite number, got {value}"},
    "settings.error.unknown": {
        "zh": "未知设置：{names}",
        "en": "unknown setting(s): {names}"},
    "settings.error.preset": {
        "zh": "preset：应为 {choices} 之一，实际为 {value!r}",
        "en": "preset: expected one of {choices}, got {value!r}"},
    "settings.error.target_modules": {
        "zh": "target_modules：应为预设名，或逗号分隔的模块名列表",
        "en": "target_modules: expected a preset or a comma-separated list of module names"},
    "settings.error.config": {
        "zh": "--config {path}：{reason}",
        "en": "--config {path}: {reason}"},
    "model.error.no_cuda": {
        "zh": "要求使用 'cuda' 设备，但 PyTorch 看不到任何 CUDA GPU",
        "en": "device 'cuda' was asked for, but no CUDA GPU is visible to PyTorch"},
    "model.error.bf16_gpu": {
        "zh": "mixed_precision 'bf16' 需要 Ampere 或更新的 GPU；这块 GPU 请用 'fp16'",
        "en": "mixed_precision 'bf16' needs an Ampere or newer GPU; use 'fp16' on this one"},
    "model.error.fp16_cpu": {
        "zh": "mixed_precision 'fp16' 需要 CUDA GPU；在 CPU 上请用 'bf16' 或 'no'",
        "en": "mixed_precision 'fp16' needs a CUDA GPU; on a CPU use 'bf16' or 'no'"},
    "model.error.tokenizer": {
        "zh": "无法从 {model!r} 加载分词器：{reason}",
        "en": "could not load a tokenizer from {model!r}: {reason}"},
    "model.error.no_hub": {
        "zh": "无法从 Hugging Face Hub（{endpoint}）下载模型 {model!r}：这台机器连不上 Hub，本地缓存里也没有它。可以：用 `python app.py --demo`（或 `train.py --demo`）运行离线演示模型；用 `--model DIR` 指定本机上的模型文件夹；或把 HF_ENDPOINT 设为一个能访问的 Hub 镜像（例如 `HF_ENDPOINT=https://hf-mirror.com`）。",
        "en": "Could not download model {model!r} from the Hugging Face Hub ({endpoint}): this machine cannot reach it and the model is not in the local cache. Use `python app.py --demo` (or `train.py --demo`) for the offline demo model, `--model DIR` for a model folder on this machine, or set HF_ENDPOINT to a Hub mirror you can reach (e.g. `HF_ENDPOINT=https://hf-mirror.com`)."},
    "model.error.no_chat_template": {
        "zh": "{model!r} 的分词器没有对话模板；请选择 instruct/chat 模型",
        "en": "the tokenizer of {model!r} has no chat template; pick an instruct/chat model"},
    "model.error.quantization_device": {
        "zh": "量化 '{quantization}'（QLoRA）需要装有 bitsandbytes 的 CUDA GPU；本次运行在 '{device}' 上。请把 quantization 设为 'none'。",
        "en": "quantization '{quantization}' (QLoRA) needs a CUDA GPU with bitsandbytes; this run is on '{device}'. Set quantization to 'none'."},
    "model.error.no_bitsandbytes": {
        "zh": "量化需要 'bitsandbytes' 包：pip install bitsandbytes",
        "en": "quantization needs the 'bitsandbytes' package: pip install bitsandbytes"},
    "model.error.load_model": {
        "zh": "无法加载模型 {model!r}：{reason}",
        "en": "could not load model {model!r}: {reason}"},
    "model.error.target_modules": {
        "zh": "target_modules {target_modules!r}：{reason}",
        "en": "target_modules {target_modules!r}: {reason}"},
    "model.error.no_adapter_config": {
        "zh": "{spec}：此处和 {spec}/adapter 中都没有 adapter_config.json",
        "en": "{spec}: no adapter_config.json here or in {spec}/adapter"},
    "model.error.load_adapter": {
        "zh": "无法加载适配器 {spec!r}：{reason}",
        "en": "could not load adapter {spec!r}: {reason}"},
    # ---- the precision policy (hust_sft.precision) and out-of-memory advice (hust_sft.oom) ----------
    "precision.error.bf16_card": {
        "zh": "{setting} 'bf16' 需要计算能力 8.0 及以上的 GPU（Ampere 或更新）；{card}（{sm}）只能模拟 bf16，速度很慢。请用 'fp16' 或 'auto'。",
        "en": "{setting} 'bf16' needs a GPU of compute capability 8.0 or newer (Ampere+); {card} ({sm}) only emulates bf16, slowly. Use 'fp16' or 'auto'."},
    "precision.error.fp16_cpu_weights": {
        "zh": "dtype 'fp16' 需要 CUDA GPU；在 CPU 上请用 'auto'、'bf16' 或 'fp32'",
        "en": "dtype 'fp16' needs a CUDA GPU; on a CPU use 'auto', 'bf16' or 'fp32'"},
    "precision.error.mismatch": {
        "zh": "dtype '{dtype}' 与 mixed_precision '{mixed}' 矛盾：权重和 autocast 必须是同一种半精度；请把其中一个设为 'auto'",
        "en": "dtype '{dtype}' with mixed_precision '{mixed}': the weights and the autocast must be the same half precision; set one of them to 'auto'"},
    "precision.error.fp16_no_scaler": {
        "zh": "dtype 'fp16' 只能在 fp16 autocast 加损失缩放下训练（否则小梯度下溢为 0）：请把 mixed_precision 设为 'auto' 或 'fp16'",
        "en": "dtype 'fp16' trains only under fp16 autocast with a loss scaler (small gradients underflow to zero without one): set mixed_precision to 'auto' or 'fp16'"},
    "precision.why.bf16_card": {
        "zh": "{card}（{sm}）原生支持 bf16：范围与 fp32 相同，无需损失缩放",
        "en": "{card} ({sm}) computes bf16 natively: fp32's range, no loss scaler needed"},
    "precision.why.fp16_card": {
        "zh": "{card}（{sm}）早于 Ampere，没有快速的 bf16：用 fp16，损失缩放防止小梯度下溢",
        "en": "{card} ({sm}) is older than Ampere and has no fast bf16: fp16, with a loss scaler so small gradients do not underflow"},
    "precision.why.cpu_bf16": {
        "zh": "CPU 支持 avx512_bf16/AMX：bf16 autocast，冻结的基座也以 bf16 存储",
        "en": "the CPU has avx512_bf16/AMX: bf16 autocast, the frozen base stored in bf16 too"},
    "precision.why.cpu_fp32": {
        "zh": "这台 CPU 没有原生 bf16：全程 fp32",
        "en": "this CPU has no native bf16: fp32 throughout"},
    "precision.why.asked": {
        "zh": "按设置：dtype {dtype}，mixed_precision {mixed}",
        "en": "as set: dtype {dtype}, mixed_precision {mixed}"},
    "precision.why.nf4": {
        "zh": "QLoRA：4 位 NF4 权重（双重量化），以 {compute} 计算",
        "en": "QLoRA: 4-bit NF4 weights (double quantization), computed in {compute}"},
    "precision.why.int8": {
        "zh": "8 位（LLM.int8）权重，其余以 {compute} 计算",
        "en": "8-bit (LLM.int8) weights, the rest computed in {compute}"},
    "precision.why.inference": {
        "zh": "回答（不训练）：无 autocast，权重用该设备的默认精度",
        "en": "answering (no training): no autocast, the device's default weights"},
    "precision.why.other": {
        "zh": "该设备默认：fp32，无 autocast",
        "en": "this device's default: fp32, no autocast"},
    "precision.describe.cuda": {
        "zh": "**{card}**（{sm}，{memory} GiB 显存）",
        "en": "**{card}** ({sm}, {memory} GiB)"},
    "precision.describe.cpu": {
        "zh": "**CPU**（{memory} GiB 内存；训练会很慢）",
        "en": "**CPU** ({memory} GiB RAM; training is slow)"},
    "precision.describe.mps": {
        "zh": "**{card}**",
        "en": "**{card}**"},
    "precision.describe.plan": {
        "zh": "硬件：{where} · 精度：{cell}，LoRA 权重 fp32 — {why}",
        "en": "Hardware: {where} · precision: {cell}, LoRA weights fp32 — {why}"},
    "precision.describe.refused": {
        "zh": "硬件：{where} · ⚠ {error}",
        "en": "Hardware: {where} · ⚠ {error}"},
    "precision.cell.weights": {
        "zh": "{weights} 权重",
        "en": "{weights} weights"},
    "precision.cell.quantized": {
        "zh": "{weights} 权重（{compute} 计算）",
        "en": "{weights} weights ({compute} compute)"},
    "precision.cell.no_autocast": {
        "zh": "{weights} · 无 autocast",
        "en": "{weights} · no autocast"},
    "precision.cell.autocast": {
        "zh": "{weights} · {autocast} autocast",
        "en": "{weights} · {autocast} autocast"},
    "precision.cell.autocast_scaler": {
        "zh": "{weights} · {autocast} autocast + 损失缩放",
        "en": "{weights} · {autocast} autocast + loss scaler"},
    "oom.error": {
        "zh": "{where}显存不足（out of memory）。按顺序降低这些设置后再试：",
        "en": "Out of memory{where}. Lower these settings, in this order, and try again:"},
    "oom.where": {
        "zh": "{card}（{memory} GiB）",
        "en": " on {card} ({memory} GiB)"},
    "oom.step.batch_size": {
        "zh": "batch_size 从 {value} 降到 {lower}（把 grad_accum 从 {accum} 提到 {accum_higher}，有效批大小仍为 {effective}）",
        "en": "batch_size from {value} to {lower} (raise grad_accum from {accum} to {accum_higher} to keep the effective batch at {effective})"},
    "oom.step.max_length": {
        "zh": "max_length 从 {value} 降到 {lower}（更长的样本按 truncation 设置被丢弃或截断）",
        "en": "max_length from {value} to {lower} (longer samples are then dropped or truncated, as truncation says)"},
    "oom.step.gradient_checkpointing": {
        "zh": "打开 gradient_checkpointing（反向传播时重算激活，约慢三分之一）",
        "en": "turn on gradient_checkpointing (activations recomputed in the backward pass, about a third slower)"},
    "oom.step.quantization": {
        "zh": "把 quantization 设为 '4bit'（QLoRA：基座权重约为 bf16 的四分之一）",
        "en": "set quantization to '4bit' (QLoRA: the base weights take about a quarter of bf16's memory)"},
    "oom.step.none": {
        "zh": "这些设置都已是最低：请换一块显存更大的 GPU",
        "en": "every one of these is at its lowest already: pick a GPU with more memory"},
    "oom.resume": {
        "zh": "运行文件夹保留了最近的检查点，可以续训（Resume）；也可以用降低后的设置开始新的运行。",
        "en": "The run's folder keeps its last checkpoint, so it can be resumed; or start a new run with the lower settings."},
    "eval.error.no_adapter": {
        "zh": "adapter：请选择一次运行，或输入 Hub id",
        "en": "adapter: pick a run or type a Hub id"},
    "jobs.busy": {
        "zh": "已有训练在进行：{run}（pid {pid}）。请先停止它或等它结束，再开始新的训练。",
        "en": "A training run is already going: {run} (pid {pid}). Stop it or wait for it to finish before starting another."},
    "jobs.killed": {
        "zh": "已按请求停止：训练进程在保存前被信号结束（退出码 {code}）；保留最后保存的检查点，可用 --resume 从那里继续。",
        "en": "Stopped on request: the trainer was ended by a signal before it could save (exit code {code}); the last saved checkpoint is kept and --resume continues from it."},
    "jobs.died": {
        "zh": "训练进程已结束（退出码 {code}），但没有报告最终状态；原因请查看 {log}。",
        "en": "The training process ended (exit code {code}) without reporting a final status; see {log} for the reason."},
    "jobs.no_script": {
        "zh": "缺少 {path}：训练脚本必须位于仓库根目录。",
        "en": "{path} is missing: the training script must sit in the repository root."},
    "training.error.no_examples": {
        "zh": "{source}：没有任何训练对话能放进 max_length={max_length} 个 token（{dropped} 条因过长被丢弃）；请调大 max_length，或把截断策略设为 'truncate'",
        "en": "{source}: no training conversation fits in max_length={max_length} tokens ({dropped} dropped as too long); raise max_length or use truncation 'truncate'"},
    "training.error.no_checkpoint": {
        "zh": "resume：{path} 中没有检查点；请先不带 --resume 训练（每个 epoch 或每 save_steps 步保存一次检查点）",
        "en": "resume: no checkpoint in {path}; train without --resume first (checkpoints are saved each epoch or every save_steps)"},
    "training.error.tracker_missing": {
        "zh": "report_to：'{tracker}' 需要 '{package}' 包，但它没有安装：请 pip install {package}，或把 report_to 设为 'none'",
        "en": "report_to: '{tracker}' needs the '{package}' package, which is not installed: pip install {package}, or set report_to to 'none'"},
    "cli.error": {
        "zh": "错误：{error}",
        "en": "error: {error}"},
    "export.cli.description": {
        "zh": "把一次训练导出为合并后的模型或单独的适配器目录，并检查它的回答与应用内完全一致。",
        "en": "Export a training run as a merged model or an adapter folder, then check that it answers exactly like the app."},
    "export.cli.run": {
        "zh": "运行目录（包含 adapter/ 与 run.json）",
        "en": "the run directory (holding adapter/ and run.json)"},
    "export.cli.merged": {
        "zh": "把合并了适配器的基座模型写到 OUT",
        "en": "write the base model with the adapter merged in to OUT"},
    "export.cli.adapter": {
        "zh": "只把适配器（供 PeftModel.from_pretrained 使用）写到 OUT",
        "en": "write the adapter alone (for PeftModel.from_pretrained) to OUT"},
    "export.cli.dtype": {
        "zh": "合并后权重的数据类型；'auto' 沿用基座模型的（默认：auto）",
        "en": "dtype of the merged weights; 'auto' keeps the base model's (default: auto)"},
    "export.cli.check": {
        "zh": "用导出的模型和应用各回答前 N 个测试问题并逐一比较；0 表示不检查（默认：%(default)s）",
        "en": "re-answer the first N test questions with the export and with the app and compare them; 0 skips the check (default: %(default)s)"},
    "export.cli.tokens": {
        "zh": "检查时每个回答最多生成的 token 数（默认：%(default)s）",
        "en": "max new tokens per answer in the check (default: %(default)s)"},
    "export.cli.lang": {
        "zh": "提示信息的语言（默认：按 LANG，否则英文）",
        "en": "language of the messages (default: from LANG, else English)"},
    "export.cli.written": {
        "zh": "{kind} 导出已写到 {path}",
        "en": "{kind} export written to {path}"},
    "export.cli.check_result": {
        "zh": "导出检查：{identical}/{total} 个回答与应用内完全相同（详见 {file}）",
        "en": "export check: {identical}/{total} answers identical to the app's (details in {file})"},
    "export.cli.differs": {
        "zh": "  不同：{question}\n    应用：  {in_app}\n    导出：  {exported}",
        "en": "  differs: {question}\n    app:      {in_app}\n    exported: {exported}"},
    "export.problem.template": {
        "zh": "  导出的对话模板生成的提示 token 与应用内不同（系统提示词或格式不一致）",
        "en": "  the export's chat template builds other prompt tokens than the app (system prompt or format differ)"},
    "export.problem.eos": {
        "zh": "  导出的 generation_config 不会在 <|im_end|> 处停止：回答会越过结尾继续生成",
        "en": "  the export's generation_config does not stop at <|im_end|>: answers would run on past their end"},
    "export.error.no_settings": {
        "zh": "{path}：没有 run.json 或 settings.json，无法得知这次运行的基座模型和系统提示词",
        "en": "{path}: no run.json or settings.json, so the base model and system prompt of this run are unknown"},
    "export.error.no_adapter": {
        "zh": "{path}：没有 adapter_config.json；这次运行没有可导出的适配器",
        "en": "{path}: no adapter_config.json; the run has no trained adapter to export"},
    "export.error.kind": {
        "zh": "导出类型：应为 'merged' 或 'adapter'，实际为 {kind!r}",
        "en": "export kind: expected 'merged' or 'adapter', got {kind!r}"},
    "export.error.inside_run": {
        "zh": "{path}：导出不能写在运行目录或它的 adapter/ 上；请换一个目录",
        "en": "{path}: an export must not be written over the run folder or its adapter/; choose another folder"},
    "export.error.not_an_export": {
        "zh": "{path}：没有 hust_sft_export.json；请先把运行导出到这里",
        "en": "{path}: no hust_sft_export.json; export the run there first"},
    "export.error.no_questions": {
        "zh": "{source}：这次运行的数据里没有可用来检查导出的问题",
        "en": "{source}: the run's data has no question to check the export with"},
    "train.cli.description": {
        "zh": "在问答文件上对对话模型做 LoRA 微调（hust-sft）。",
        "en": "LoRA fine-tuning of a chat model on a Q&A file (hust-sft)."},
    "train.cli.epilog": {
        "zh": "创建 RUN_DIR/STOP 文件或发送 SIGTERM 可停止训练；用 --resume 继续。",
        "en": "Stop a running job by creating RUN_DIR/STOP or sending SIGTERM; resume with --resume."},
    "train.cli.lang": {
        "zh": "提示信息和本帮助的语言（默认：按 LANG，否则英文）",
        "en": "language of the messages and of this help (default: from LANG, else English)"},
    "train.cli.demo": {
        "zh": "离线演示：使用 app.py --demo 的微型随机模型和内置示例手册（除非另给 --model / --data），不下载任何东西；输出是噪声，只用来试用流程。",
        "en": "Offline demo: the tiny random model of app.py --demo and the bundled sample handbook (unless --model / --data say otherwise); nothing is downloaded. Its output is noise: for trying the workflow."},
    "train.cli.bar": {
        "zh": "训练",
        "en": "training"},
    "train.cli.bar_loss": {
        "zh": "损失 {loss:.4f}",
        "en": "loss {loss:.4f}"},
    "train.cli.eval": {
        "zh": "验证损失 {loss:.4f}（第 {step} 步，第 {epoch} 轮）",
        "en": "validation loss {loss:.4f} (step {step}, epoch {epoch})"},
    "train.cli.log_line": {
        "zh": "第 {step} / {total} 步 · 损失 {loss} · 学习率 {lr} · {tps} token/秒 · 预计剩余 {eta} · 峰值内存 {mem} MB",
        "en": "step {step} / {total} · loss {loss} · learning rate {lr} · {tps} tokens/s · ETA {eta} · peak memory {mem} MB"},
    "train.cli.best": {
        "zh": "最低验证损失：{loss}（第 {step} 步，第 {epoch} 轮）",
        "en": "best validation loss: {loss} (step {step}, epoch {epoch})"},
    "train.cli.no_eval": {
        "zh": "最低验证损失：–（没有验证集）",
        "en": "best validation loss: – (no validation split)"},
    "train.cli.wall": {
        "zh": "用时 {wall}，共 {steps} 步，最后训练损失 {loss}",
        "en": "wall time {wall}, {steps} steps, last training loss {loss}"},
    "training.status.running": {
        "zh": "训练已开始",
        "en": "training started"},
    "training.status.completed": {
        "zh": "训练完成；适配器已保存到 {adapter}",
        "en": "training completed; adapter saved to {adapter}"},
    "training.status.stopped": {
        "zh": "已按请求在第 {step} 步停止；适配器已保存到 {adapter}",
        "en": "stopped on request at step {step}; adapter saved to {adapter}"},
    "training.best.kept": {
        "zh": "保留了第 {step} 步（第 {epoch:g} 轮）的适配器：它的验证损失 {loss:.4f} 是 {n} 轮中最低的（最后一轮为 {last:.4f}）",
        "en": "kept the adapter of step {step} (epoch {epoch:g}): its validation loss {loss:.4f} is the lowest of {n} epochs (the last one's: {last:.4f})"},
    "training.best.is_last": {
        "zh": "保留了最后一步（第 {step} 步，第 {epoch:g} 轮）的适配器：它的验证损失 {loss:.4f} 是 {n} 轮中最低的",
        "en": "kept the adapter of the last step {step} (epoch {epoch:g}): its validation loss {loss:.4f} is the lowest of {n} epochs"},
    "training.best.save_steps": {
        "zh": "保留了最后一步的适配器：检查点每 {save_steps} 步保存一次，每轮的验证损失没有对应的检查点可回退（把 save_steps 设为 0 即可保留最佳一轮）",
        "en": "kept the last step's adapter: with checkpoints every {save_steps} steps the per-epoch validation losses have no checkpoint to go back to (set save_steps to 0 to keep the best epoch)"},
    "training.best.no_validation": {
        "zh": "保留了最后一步的适配器：没有计算验证损失（验证集为空或关闭了验证）",
        "en": "kept the last step's adapter: no validation loss was computed (empty validation split or validation off)"},
    "training.best.none_saved": {
        "zh": "保留了最后一步的适配器：没有任何带验证损失的一轮被保存为检查点",
        "en": "kept the last step's adapter: no epoch with a validation loss was checkpointed"},
    "training.retrieval.summary": {
        "zh": "检索 '{mode}'：{passages} 条段落已索引到 {path}；k={k}；{samples} 个训练样本中有 {with_own} 个能看到自身问答对",
        "en": "retrieval '{mode}': {passages} passages indexed in {path}; k={k}; {with_own} of {samples} training samples see their own pair"},
    "passage_size.summary": {
        "zh": "段落：训练时每个样本 {train_k} 条、每条最多 {train_chars} 字符；回答时 {answer_k} 条、每条最多 {answer_chars} 字符（{why}）。更长的问答对会被切成多块，每块都完整放入提示。",
        "en": "Passages: {train_k} per training sample of at most {train_chars} characters; {answer_k} when answering of at most {answer_chars} ({why}). A longer pair is split into chunks that each fit whole."},
    "passage_size.why.data": {
        "zh": "按数据确定：第 90 百分位的训练问答对有 {pair_chars} 字符；{k} 条约 {tokens} 个 token，预算 {budget}",
        "en": "from the data: the 90th-percentile training pair is {pair_chars} characters; {k} passages take ≈{tokens} of a {budget}-token budget"},
    "passage_size.why.budget": {
        "zh": "受 token 预算限制：第 90 百分位的训练问答对有 {pair_chars} 字符，但 {k} 条段落最多只能占 {budget} 个 token",
        "en": "held to the token budget: the 90th-percentile training pair is {pair_chars} characters, but {k} passages may take only {budget} tokens"},
    "passage_size.why.setting": {
        "zh": "按设置",
        "en": "as set"},
    "training.cli.done": {
        "zh": "{status}：适配器已保存到 {adapter}（运行目录 {run_dir}）",
        "en": "{status}: adapter saved to {adapter} (run directory {run_dir})"},
    "training.status.stopped_loading": {
        "zh": "训练开始前（加载数据或模型时）已按请求停止；本段没有进行训练",
        "en": "stopped on request before training began (while loading the data or the model); nothing was trained in this segment"},
    # ---- evaluation, arena, hub (hust_sft/evaluation/, arena.py, hub.py) ----
    "arena.error.bad_choice": {
        "zh": "投票：应为 {choices} 之一，实际为 {choice!r}",
        "en": "vote: expected one of {choices}, got {choice!r}"},
    "arena.error.unknown_pair": {
        "zh": "投票：没有 id 为 {pair_id!r} 的对比（可能属于另一个竞技场数据库）",
        "en": "vote: no pair with id {pair_id!r} (it may belong to another arena database)"},
    "arena.error.already_voted": {
        "zh": "这组对比（{pair_id}）已经投过票；每组只计一次。",
        "en": "This pair ({pair_id}) already has a vote; each pair counts once."},
    # ---- public limits (hust_sft/limits.py, serving.py) ----
    "limits.error.public_max": {
        "zh": "{field}：这个公开 Space 的访客最多可设为 {maximum}（所有者可以设得更大）；收到 {got}。",
        "en": "{field}: at most {maximum} for visitors of this public Space (its owner may set more); got {got}."},
    "limits.error.too_long": {
        "zh": "{field}：这个公开 Space 的访客最多可输入 {maximum} 个字符；收到 {got}。",
        "en": "{field}: at most {maximum} characters for visitors of this public Space; got {got}."},
    "limits.error.history_turns": {
        "zh": "对话历史：这个公开 Space 的访客每段对话最多带 {maximum} 个之前的问题；收到 {got}。请按“清空”开始新的对话。",
        "en": "history: at most {maximum} earlier questions per conversation for visitors of this public Space; got {got}. Press Clear to start a new conversation."},
    "limits.error.rate_voter": {
        "zh": "盲评对比：每位投票者每 {window} 秒最多 {n} 组；请 {wait} 秒后再试。",
        "en": "Blind pairs: at most {n} every {window} s for each voter; try again in {wait} s."},
    "limits.error.rate_address": {
        "zh": "盲评对比：同一地址每 {window} 秒最多 {n} 组；请 {wait} 秒后再试。",
        "en": "Blind pairs: at most {n} every {window} s from one address; try again in {wait} s."},
    "limits.error.eval_busy": {
        "zh": "评测排满了：同时最多运行 {running} 个、另有 {waiting} 个排队；请几分钟后再试。",
        "en": "Evaluations are full: {running} running and {waiting} waiting at most; try again in a few minutes."},
    "serving.error.busy": {
        "zh": "共享的模型正忙：正在用 {loaded} 评测，而这个请求需要 {asked}；请等评测结束后再试。",
        "en": "The shared model is busy: an evaluation is running on {loaded}, and this needs {asked}; try again when it has finished."},
    "serving.error.busy_adapter": {
        "zh": "共享的模型正忙：正在用 {loaded} 评测，而这个请求需要一个尚未加载的适配器；请等评测结束后再试。",
        "en": "The shared model is busy: an evaluation is running on {loaded}, and this needs an adapter that is not loaded; try again when it has finished."},
    "hub.error.repo_id_empty": {
        "zh": "仓库 id：请填写 owner/name，例如 your-name/qwen2.5-hust-lora。",
        "en": "Repository id: enter owner/name, e.g. your-name/qwen2.5-hust-lora."},
    "hub.error.repo_id_owner": {
        "zh": "仓库 id {repo_id!r}：应为 owner/name（请先登录，或在前面写上用户名或组织名）。",
        "en": "Repository id {repo_id!r}: expected owner/name (log in, or write your user or organisation name first)."},
    "hub.error.repo_id_slashes": {
        "zh": "仓库 id {repo_id!r}：应恰好包含一个 '/'，形如 owner/name。",
        "en": "Repository id {repo_id!r}: expected exactly one '/', as in owner/name."},
    "hub.error.repo_id_length": {
        "zh": "仓库 id {repo_id!r}：{part!r} 超过 {max} 个字符。",
        "en": "Repository id {repo_id!r}: {part!r} is longer than {max} characters."},
    "hub.error.repo_id_chars": {
        "zh": "仓库 id {repo_id!r}：{part!r} 只能包含字母、数字、'-'、'_'、'.'，且首尾必须是字母或数字。",
        "en": "Repository id {repo_id!r}: {part!r} may use only letters, digits, '-', '_' and '.', and must start and end with a letter or digit."},
    "hub.error.repo_id_double": {
        "zh": "仓库 id {repo_id!r}：{part!r} 不能包含 '--' 或 '..'。",
        "en": "Repository id {repo_id!r}: {part!r} must not contain '--' or '..'."},
    "hub.error.repo_id_git": {
        "zh": "仓库 id {repo_id!r}：不能以 '.git' 结尾。",
        "en": "Repository id {repo_id!r}: must not end with '.git'."},
    "hub.error.no_token": {
        "zh": "发布需要有写权限的 Hugging Face token：请用按钮登录，或设置 HF_TOKEN 密钥。",
        "en": "Publishing needs a Hugging Face token with write access: log in with the button, or set the HF_TOKEN secret."},
    "hub.error.no_token_local": {
        "zh": "发布需要有写权限的 Hugging Face token。这里不是 Space，没有登录按钮：请设置环境变量 HF_TOKEN 后重新启动应用（例如 `HF_TOKEN=hf_… python app.py`）。",
        "en": "Publishing needs a Hugging Face token with write access. This is not a Space, so there is no sign-in button: set the HF_TOKEN environment variable and start the app again (e.g. `HF_TOKEN=hf_… python app.py`)."},
    "hub.error.no_adapter": {
        "zh": "{path} 中没有适配器（缺少 adapter_config.json）：请先完成或停止训练。",
        "en": "{path} holds no adapter (adapter_config.json is missing): finish or stop the training run first."},
    "hub.error.publish": {
        "zh": "发布到 {repo_id} 失败：{message}",
        "en": "Publishing to {repo_id} failed: {message}"},
    "hub.commit_message": {
        "zh": "上传运行 {run} 的 LoRA 适配器（hust-sft）",
        "en": "Upload LoRA adapter from run {run} (hust-sft)"},
    "hub.card.intro": {
        "zh": "{base} 的 LoRA 适配器，使用 hust-sft 在 {data} 上微调。",
        "en": "A LoRA adapter for {base}, fine-tuned with hust-sft on {data}."},
    "hub.card.load": {
        "zh": "加载方法",
        "en": "How to load"},
    "hub.card.load_note_merged": {
        "zh": "仓库包含已合并适配器的基座模型、分词器和 generation_config。对话模板的默认系统提示词就是训练时用的那一个，所以只发送问题即可得到与应用内相同的回答：",
        "en": "The repository holds the base model with the adapter merged in, its tokenizer and a generation_config. The chat template's default system prompt is the one used in training, so sending just the question answers as the app did:"},
    "hub.card.export_check_title": {
        "zh": "导出检查",
        "en": "Export check"},
    "hub.card.export_check": {
        "zh": "发布前，这些文件按上面的方式重新加载（{dtype}，{device}），对留出的 {split} 集中的 {total} 个问题做贪心解码（每个最多 {tokens} 个新 token）：**{identical}/{total} 个回答**与应用内对话（基座 + 适配器）的回答完全相同。",
        "en": "Before publishing, these files were reloaded as shown above ({dtype} on {device}) and answered {total} questions of the held-out {split} split greedily (at most {tokens} new tokens each): **{identical}/{total} answers identical** to the answers of the app's own chat (base + adapter)."},
    "hub.card.export_unchecked": {
        "zh": "这些文件发布时未做导出检查（没有与应用内的回答比较）。",
        "en": "These files were published without the export check (answers were not compared with the app's)."},
    "hub.error.export": {
        "zh": "无法为发布导出这次运行：{error}",
        "en": "The run could not be exported for publishing: {error}"},
    "hub.error.export_differs": {
        "zh": "未推送任何内容：导出的模型与应用内回答不同（{identical}/{total} 个相同；问题：{problems}）。不同之处：{pairs}",
        "en": "Nothing was pushed: the export answers differently from the app ({identical}/{total} answers identical; problems: {problems}). Differing: {pairs}"},
    "ui.publish.merged": {
        "zh": "合并后的模型",
        "en": "Merged model"},
    "ui.publish.merged_help": {
        "zh": "发布合并了适配器的基座模型（只用 AutoModelForCausalLM 即可加载），而不是单独的适配器。两种方式都会先检查：导出文件对测试问题的回答必须与应用内相同。",
        "en": "Publish the base model with the adapter merged in (loads with AutoModelForCausalLM alone) instead of the adapter. Either way the upload is first checked: its answers to test questions must equal the app's."},
    "ui.publish.done_checked": {
        "zh": "✓ 已发布：{url} —— 导出检查：{identical}/{total} 个回答与应用内相同",
        "en": "✓ Published: {url} — export check: {identical}/{total} answers identical to the app's"},
    "hub.card.load_note": {
        "zh": "仓库包含适配器和分词器。请使用训练时的系统提示词：",
        "en": "The repository holds the adapter and the tokenizer. Use the system prompt the adapter was trained with:"},
    "hub.card.example_question": {
        "zh": "如何申请休学？",
        "en": "How do I apply for a leave of absence?"},
    "hub.card.data": {
        "zh": "训练数据",
        "en": "Training data"},
    "hub.card.item": {
        "zh": "项目",
        "en": "Item"},
    "hub.card.value": {
        "zh": "值",
        "en": "Value"},
    "hub.card.source": {
        "zh": "来源",
        "en": "Source"},
    "hub.card.splits": {
        "zh": "问题数（训练 / 验证 / 测试）",
        "en": "Questions (train / validation / test)"},
    "hub.card.training": {
        "zh": "训练",
        "en": "Training"},
    "hub.card.status": {
        "zh": "状态",
        "en": "Status"},
    "hub.card.steps": {
        "zh": "优化步数",
        "en": "Optimizer steps"},
    "hub.card.epochs": {
        "zh": "轮数",
        "en": "Epochs"},
    "hub.card.train_loss": {
        "zh": "最终训练损失",
        "en": "Final training loss"},
    "hub.card.val_loss": {
        "zh": "最终验证损失",
        "en": "Final validation loss"},
    "hub.card.wall_time": {
        "zh": "用时",
        "en": "Wall time"},
    "hub.card.peak_memory": {
        "zh": "峰值内存",
        "en": "Peak memory"},
    "hub.card.trainable": {
        "zh": "可训练 / 总参数",
        "en": "Trainable / total parameters"},
    "hub.card.device": {
        "zh": "设备 / 精度 / 混合精度",
        "en": "Device / dtype / mixed precision"},
    "hub.card.versions": {
        "zh": "库版本",
        "en": "Library versions"},
    "hub.card.settings": {
        "zh": "设置",
        "en": "Settings"},
    "hub.card.setting": {
        "zh": "设置项",
        "en": "Setting"},
    "hub.card.evaluation": {
        "zh": "评测",
        "en": "Evaluation"},
    "hub.card.retrieval": {
        "zh": "检索",
        "en": "Retrieval"},
    "hub.card.retrieval_index": {
        "zh": "索引",
        "en": "Index"},
    "hub.card.retrieval_index_value": {
        "zh": "本仓库中的 `retrieval/`：{passages} 段资料，{library}",
        "en": "`retrieval/` in this repo: {passages} passages, {library}"},
    "hub.card.retrieval_no_index": {
        "zh": "该运行未保存索引",
        "en": "none saved with the run"},
    "hub.card.retrieval_knowledge": {
        "zh": "知识文件",
        "en": "Knowledge files"},
    "hub.card.retrieval_note": {
        "zh": "`retrieval/` 文件夹是 BM25 索引（训练集 + 知识文件），对话和评测中的检索组都检索它。用 `hust_sft.retrieval.Retriever.load(\"retrieval\")` 加载，`.search(question, k, min_relevance=…)` 检索，再用训练时的同一模板 `hust_sft.data.encoding.prompt_ids(tokenizer, messages, system_prompt, passages=...)` 提问。",
        "en": "The `retrieval/` folder is the BM25 index (training split + knowledge files) that Chat and the evaluation's retrieval arms searched. Load it with `hust_sft.retrieval.Retriever.load(\"retrieval\")`, search with `.search(question, k, min_relevance=…)` and ask with `hust_sft.data.encoding.prompt_ids(tokenizer, messages, system_prompt, passages=...)`, the template training used."},
    "hub.card.retrieval_note_built": {
        "zh": "该运行未保存索引：评测中的检索组检索的是用 `hust_sft.retrieval.Retriever.build` 从训练集构建的索引，同样的数据可以完全重建。",
        "en": "This run saved no index: its evaluation's retrieval arms searched one built from the training split by `hust_sft.retrieval.Retriever.build`, which the same data rebuilds exactly."},
    "hub.card.no_eval": {
        "zh": "发布前未运行评测。",
        "en": "No evaluation was run before publishing."},
    "eval.cli.description": {
        "zh": "在留出的测试集（以及可选的域外文件）上评测基座模型和 LoRA 适配器；输出 per_example.jsonl/.csv 和 summary.json/.md。",
        "en": "Evaluate the base model and LoRA adapters on the held-out test split (and an optional out-of-domain file); writes per_example.jsonl/.csv and summary.json/.md."},
    "eval.cli.wrote": {
        "zh": "评测结果已写入 {path}（summary.md、summary.json、per_example.csv、per_example.jsonl）",
        "en": "evaluation written to {path} (summary.md, summary.json, per_example.csv, per_example.jsonl)"},
    "field.eval.output.help": {
        "zh": "评测文件的保存目录；未设置时为第一个适配器运行目录下的 eval，否则为 runs/eval-<时间>。",
        "en": "Folder for the evaluation files; when unset, <first adapter's run dir>/eval, else runs/eval-<time>."},
    "field.eval.batch_size.help": {
        "zh": "一次批量贪心生成同时回答的问题数。",
        "en": "Questions answered together in one batched greedy generate() call."},
    "field.retrieval.label": {
        "zh": "检索",
        "en": "Retrieval"},
    "field.retrieval.help": {
        "zh": "off：只根据问题作答。answer：用训练集问答对（及知识文件）建立 BM25 索引，回答时把最相关的段落放进提示。train：同上，并且训练时也带上检索到的段落（RAFT），让模型学会利用它们。",
        "en": "off: answer from the question alone. answer: build a BM25 index of the training pairs (and knowledge files) and put the top passages in the prompt when answering. train: the same, and train with retrieved passages too (RAFT), so the model learns to use them."},
    "field.retrieval_k.label": {
        "zh": "每个训练问题的段落数（k）",
        "en": "Passages per training question (k)"},
    "field.retrieval_k.help": {
        "zh": "每个训练提示中放入多少条检索到的段落，编号为 [1]…[k]；0 表示与回答时相同（RAFT 论文的做法）。段落越多，每个样本的 token 越多。",
        "en": "How many retrieved passages go into each training prompt, numbered [1]…[k]; 0: as many as when answering (as the RAFT paper trains). More passages cost more tokens per sample."},
    "field.answer_k.label": {
        "zh": "回答时的段落数",
        "en": "Passages when answering"},
    "field.answer_k.help": {
        "zh": "对话、评测和盲评中每个提示放入多少条检索到的段落；比训练时多不增加训练时间。",
        "en": "How many retrieved passages go into each prompt in Chat, the evaluation and Blind A/B; more than in training costs no training time."},
    "field.raft_oracle_ratio.label": {
        "zh": "含自身问答对的比例（RAFT）",
        "en": "Share with own pair (RAFT)"},
    "field.raft_oracle_ratio.help": {
        "zh": "训练样本中，自身问答对出现在段落里（位置随机）的比例；其余样本只看到其他问答对，使模型也学会在资料答不了时不编造。",
        "en": "Share of training samples whose own Q&A pair is among their passages (at a random place); the others see only other pairs, so the model also learns not to invent when the passages do not answer."},
    "field.passage_max_chars.label": {
        "zh": "每段最多字符数（训练）",
        "en": "Max characters per passage (training)"},
    "field.passage_max_chars.help": {
        "zh": "训练提示中每条段落的最大长度，也是索引的分块大小：更长的问答对和知识文件被切成多块，每块都完整放得下，而不是被截断。0 表示根据训练数据确定：不短于第 90 百分位的问答对，且 k 条段落不超过段落 token 预算。",
        "en": "The longest a passage may be in a training prompt, and the index's chunk size: a longer pair or knowledge section is split into chunks that each fit, never cut. 0: derived from the training pairs — no shorter than the 90th-percentile pair, with k passages within the passage token budget."},
    "field.answer_passage_chars.label": {
        "zh": "每段最多字符数（回答）",
        "en": "Max characters per passage (answering)"},
    "field.answer_passage_chars.help": {
        "zh": "对话、评测和盲评的提示中每条段落的最大长度；0 表示与训练时相同（按训练数据确定）。",
        "en": "The longest a passage may be in Chat, evaluation and Blind A/B prompts; 0: as in training (derived from the training pairs)."},
    "field.passage_tokens.label": {
        "zh": "段落 token 预算",
        "en": "Passage token budget"},
    "field.passage_tokens.help": {
        "zh": "一个提示中所有段落合计最多占用的 token 数；自动确定段落长度时使用，并且不超过“每个样本最大 token 数”留给段落的空间。",
        "en": "The most tokens all passages of one prompt may take; used when the passage length is derived, and never more than what the max tokens per sample leaves for passages."},
    "field.knowledge_files.label": {
        "zh": "知识文件",
        "en": "Knowledge files"},
    "field.knowledge_files.help": {
        "zh": "可选的知识文件（例如学生手册原文）：PDF（需有文字层；扫描件请先 OCR）、DOCX、Markdown 或 UTF-8 纯文本，按标题和页分块后加入索引，每段注明出处（如 handbook.pdf p.12、handbook.docx §2.3 标题）。PDF/DOCX 不超过 50 MB，.md/.txt 不超过 5 MB；PDF 最多 2,000 页。",
        "en": "Optional knowledge files (e.g. the handbook itself): PDF (with a text layer; OCR a scan first), DOCX, Markdown or UTF-8 text, chunked by heading and page and added to the index, each passage citing where it is (e.g. handbook.pdf p.12, handbook.docx §2.3 Heading). PDF/DOCX at most 50 MB, .md/.txt at most 5 MB; a PDF at most 2,000 pages."},
    "field.min_relevance.label": {
        "zh": "最低相关度",
        "en": "Minimum relevance"},
    "field.min_relevance.help": {
        "zh": "段落至少包含问题词语权重（BM25 idf）的这一比例才会被使用。没有任何段落达到时，该问题视为与手册无关（离题）。",
        "en": "A passage is used only when it contains at least this share of the question's word weight (BM25 idf). A question no passage reaches is off topic for the handbook."},
    "field.off_topic.label": {
        "zh": "离题问题",
        "en": "Off-topic questions"},
    "field.off_topic.help": {
        "zh": "base：没有相关段落的问题由基座模型不带资料回答（适配器学的是手册，不是通识）。no_passages：仍由微调模型回答，并告知未检索到资料。",
        "en": "base: a question no passage is relevant to is answered by the base model without passages (the adapter learnt the handbook, not the world). no_passages: the tuned model answers it, told that nothing was found."},
    "field.embedding_model.label": {
        "zh": "向量检索模型（可选）",
        "en": "Embedding model (optional)"},
    "field.embedding_model.help": {
        "zh": "句向量模型的 Hub id 或本地文件夹（如 BAAI/bge-small-zh-v1.5），与 BM25 按倒数排名融合（RRF）；留空只用 BM25，无需下载。段落向量随索引保存；离题判断仍用 BM25 相关度。",
        "en": "Hub id or folder of a sentence-embedding model (e.g. BAAI/bge-small-zh-v1.5), fused with BM25 by reciprocal rank (RRF); empty is BM25 alone, no download. The passage embeddings are saved with the index; the off-topic floor stays on BM25's relevance."},
    "field.embedding_pooling.label": {
        "zh": "向量池化",
        "en": "Embedding pooling"},
    "field.embedding_pooling.help": {
        "zh": "auto：按模型自带的 sentence-transformers 池化配置（没有则取平均）；mean：所有词元的平均；cls：第一个词元。",
        "en": "auto: the model's own sentence-transformers pooling config (mean when it has none); mean: the average over the tokens; cls: the first token."},
    "field.embedding_query_prefix.label": {
        "zh": "问题前缀（向量）",
        "en": "Question prefix (embedding)"},
    "field.embedding_query_prefix.help": {
        "zh": "向量化问题前加在其前面的文字，按模型说明填写（multilingual-e5：\"query: \"）；默认无。",
        "en": "Text put before the question when embedding it, as the model card says (multilingual-e5: \"query: \"); none by default."},
    "field.embedding_passage_prefix.label": {
        "zh": "段落前缀（向量）",
        "en": "Passage prefix (embedding)"},
    "field.embedding_passage_prefix.help": {
        "zh": "向量化每条段落前加在其前面的文字（multilingual-e5：\"passage: \"）；默认无。",
        "en": "Text put before each passage when embedding it (multilingual-e5: \"passage: \"); none by default."},
    "retrieval.error.knowledge_type": {
        "zh": "{file}：不是知识文件；应为 {suffixes} 之一",
        "en": "{file}: not a knowledge file; expected one of {suffixes}"},
    "retrieval.error.knowledge_too_large": {
        "zh": "{file}：作为知识文件太大（{size} 字节；最多 {limit}）",
        "en": "{file}: too large for a knowledge file ({size} bytes; at most {limit})"},
    "retrieval.error.knowledge_unreadable": {
        "zh": "{file}：无法读取（{reason}）",
        "en": "{file}: cannot be read ({reason})"},
    "retrieval.error.knowledge_binary": {
        "zh": "{file}：像是二进制文件（偏移 {offset} 处有 NUL 字节）；应为 UTF-8 文本（.txt 或 .md）",
        "en": "{file}: looks binary (a NUL byte at offset {offset}); expected UTF-8 text (.txt or .md)"},
    "retrieval.error.knowledge_not_utf8": {
        "zh": "{file}：不是 UTF-8 文本（偏移 {offset} 处字节无效）；请另存为 UTF-8",
        "en": "{file}: not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8"},
    "retrieval.error.knowledge_empty": {
        "zh": "{file}：文件为空；知识文件需要有内容",
        "en": "{file}: empty; a knowledge file needs some text"},
    "retrieval.error.knowledge_too_much_text": {
        "zh": "{file}：文字超过 {limit} 个字符（读到 {where} 时）；请拆分成几个文件",
        "en": "{file}: more than {limit} characters of text (reached at {where}); split it into several files"},
    "retrieval.error.knowledge_pdf_no_text": {
        "zh": "{file}：{pages} 页中没有一页有文字层（扫描版 PDF？）；请先做 OCR（例如 ocrmypdf）或导出文字后再上传",
        "en": "{file}: none of its {pages} pages has a text layer (a scanned PDF?); run OCR on it first (e.g. ocrmypdf) or export its text"},
    "retrieval.error.knowledge_pdf_encrypted": {
        "zh": "{file}：PDF 已加密，需要密码才能打开（{reason}）；请另存一份不加密的副本再上传",
        "en": "{file}: an encrypted PDF that needs a password to open ({reason}); save an unprotected copy and use that"},
    "retrieval.error.knowledge_pdf_damaged": {
        "zh": "{file}：不是可读的 PDF（{reason}）",
        "en": "{file}: not a readable PDF ({reason})"},
    "retrieval.error.knowledge_pdf_too_many_pages": {
        "zh": "{file}：共 {pages} 页；知识文件最多 {limit} 页，请拆分",
        "en": "{file}: {pages} pages; a knowledge file has at most {limit}, split it"},
    "retrieval.error.knowledge_pdf_too_complex": {
        "zh": "{file}：页面内容解码后超过 {limit} 字节（读到 {where} 时）；请拆分或另存为较简单的 PDF",
        "en": "{file}: more than {limit} bytes of decoded page content (reached at {where}); split it or save a simpler PDF"},
    "retrieval.error.knowledge_docx_not_zip": {
        "zh": "{file}：不是 DOCX（.docx 是 zip 文件，这个文件不是）；请用 Word 另存为 .docx",
        "en": "{file}: not a DOCX (a .docx is a zip file and this is not one); save it from Word as .docx"},
    "retrieval.error.knowledge_docx_ole": {
        "zh": "{file}：是旧版 Word（.doc）或加了密码的 .docx，不是 zip 文件；请另存为不加密的 .docx",
        "en": "{file}: an old Word .doc or a password-protected .docx, not a zip file; save it as an unprotected .docx"},
    "retrieval.error.knowledge_docx_not_word": {
        "zh": "{file}：是 zip 文件但不是 Word 文档（缺少 word/document.xml）",
        "en": "{file}: a zip file but not a Word document (no word/document.xml)"},
    "retrieval.error.knowledge_docx_too_large": {
        "zh": "{file}：解压后 {size} 字节、{entries} 个部件；最多 {limit} 字节、{max_entries} 个部件",
        "en": "{file}: unpacks to {size} bytes in {entries} parts; at most {limit} bytes and {max_entries} parts"},
    "retrieval.error.knowledge_docx_damaged": {
        "zh": "{file}：不是可读的 DOCX（{reason}）",
        "en": "{file}: not a readable DOCX ({reason})"},
    "retrieval.error.nothing_to_index": {
        "zh": "检索：没有可索引的内容（没有训练问答对，也没有知识文件）",
        "en": "retrieval: nothing to index (no training pair and no knowledge file)"},
    "retrieval.error.no_index": {
        "zh": "{path}：这里没有检索索引（应有 meta.json、passages.jsonl 和 bm25s/）",
        "en": "{path}: no retrieval index here (expected meta.json, passages.jsonl and bm25s/)"},
    "retrieval.error.bad_index": {
        "zh": "{path}：检索索引无法使用（{reason}）；请重新训练，或重新复制该运行的 retrieval/ 文件夹",
        "en": "{path}: the retrieval index cannot be used ({reason}); retrain the run or copy its retrieval/ folder again"},
    "retrieval.error.run_without_index": {
        "zh": "{run} 训练时使用了检索 '{mode}'，但缺少 {path}；没有训练时用的段落，它不会作答。请把该运行的 retrieval/ 文件夹复制回来（或重新训练）。",
        "en": "{run} was trained with retrieval '{mode}' but {path} is missing; it will not answer without the passages it was trained with. Copy the run's retrieval/ folder back (or retrain)."},
    "retrieval.error.index_too_new": {
        "zh": "{path}：检索索引格式 {format} 比本版本能读取的（≤ {supported}）更新；请升级 hust-sft，或用本版本重新训练",
        "en": "{path}: retrieval index format {format} is newer than this version reads (≤ {supported}); upgrade hust-sft or retrain with this version"},
    "retrieval.error.embedding_unavailable": {
        "zh": "无法加载向量模型 '{model}'（{reason}）；请检查 Hub id 或文件夹、网络，或把 embedding_model 留空只用 BM25",
        "en": "cannot load the embedding model '{model}' ({reason}); check the Hub id or folder and the network, or leave embedding_model empty for BM25 alone"},
    "retrieval.error.embedding_pooling": {
        "zh": "向量池化方式 '{pooling}' 无效；应为 {choices} 之一",
        "en": "embedding pooling '{pooling}' is not valid; expected one of {choices}"},
    "retrieval.error.embedding_mismatch": {
        "zh": "{path}：索引的段落向量由 '{built}' 计算，但这里要用 '{asked}'；不同模型的向量不能混用。请用同一模型，或重新训练以重建索引。",
        "en": "{path}: the index's passage embeddings were computed with '{built}', but '{asked}' is asked for; embeddings of different models cannot be mixed. Use the same model, or retrain to rebuild the index."},
    "retrieval.error.embedding_file": {
        "zh": "{path}：段落向量无法使用（{reason}）；请重新复制该运行的 retrieval/ 文件夹，或重新训练",
        "en": "{path}: the passage embeddings cannot be used ({reason}); copy the run's retrieval/ folder again, or retrain"},
    "eval.cli.error": {
        "zh": "错误：{message}",
        "en": "error: {message}"},
    "eval.error.sampling": {
        "zh": "temperature 为 {value}，但评测使用贪心解码以保证结果可复现；请把 temperature 设为 0。",
        "en": "temperature is {value}, but evaluation decodes greedily so that results can be reproduced; set temperature to 0."},
    "eval.error.repetition_penalty": {
        "zh": "repetition_penalty 为 {value}，但评测使用纯贪心解码（惩罚 1.0），以保证批量与逐条生成结果一致；请设为 1。",
        "en": "repetition_penalty is {value}, but evaluation uses plain greedy decoding (penalty 1.0) so that batched and one-by-one answers agree; set it to 1."},
    "eval.error.no_examples": {
        "zh": "没有可评测的内容：{source} 的测试集为空（test_ratio {test_ratio}），也没有提供域外文件。",
        "en": "nothing to evaluate: the test split of {source} is empty (test_ratio {test_ratio}) and no out-of-domain file was given."},
    "eval.warn.data_differs": {
        "zh": "该运行训练时 {key} = {run!r}，本次评测使用 {now!r}：测试集可能包含训练过的问题。",
        "en": "the run was trained with {key} = {run!r}, this evaluation uses {now!r}: the test split may contain training questions."},
    "eval.warn.base_differs": {
        "zh": "适配器 {model} 是在 {trained} 上训练的，但本次在 {now} 上评测。",
        "en": "adapter {model} was trained on {trained}, but is evaluated on {now}."},
    "eval.progress.data": {
        "zh": "正在加载数据",
        "en": "Loading data"},
    "eval.progress.retrieval": {
        "zh": "正在加载检索索引",
        "en": "Loading the retrieval index"},
    "eval.error.no_arms": {
        "zh": "没有可评测的对比组：{arms} 中的 tuned 和 tuned+retrieval 需要适配器；请选择 base 或 base+retrieval，或添加 --adapter。",
        "en": "no arm to evaluate: arms {arms} need an adapter for tuned or tuned+retrieval; pick base or base+retrieval, or add --adapter."},
    "eval.progress.model": {
        "zh": "正在加载模型和适配器",
        "en": "Loading the model and adapters"},
    "eval.progress.generating": {
        "zh": "{model} 正在回答：{done}/{total}",
        "en": "Answering with {model}: {done}/{total}"},
    "eval.progress.scoring": {
        "zh": "正在给回答打分",
        "en": "Scoring answers"},
    "eval.progress.writing": {
        "zh": "正在写入 {path}",
        "en": "Writing {path}"},
    "eval.progress.done": {
        "zh": "完成：{path}",
        "en": "Done: {path}"},
    "eval.md.title": {
        "zh": "评测结果",
        "en": "Evaluation"},
    "eval.split.test": {
        "zh": "留出测试集",
        "en": "Held-out test split"},
    "eval.split.ood": {
        "zh": "域外测试集",
        "en": "Out-of-domain set"},
    "eval.md.metric": {
        "zh": "指标（×100）",
        "en": "Metric (×100)"},
    "eval.md.diff": {
        "zh": "{model} − {against} [95% 置信区间]",
        "en": "{model} − {against} [95% CI]"},
    "eval.split.validation": {
        "zh": "验证集（用于选择设置）",
        "en": "Validation split (for choosing settings)"},
    "eval.split.train": {
        "zh": "训练集问题（抽样）",
        "en": "Training questions (sample)"},
    "eval.md.did_it_learn": {
        "zh": "学会了吗？",
        "en": "Did it learn?"},
    "eval.md.off_topic": {
        "zh": "离题（没有段落达到最低相关度）：{arms}。",
        "en": "Off topic (no passage reached the minimum relevance): {arms}."},
    "eval.md.off_topic_arm": {
        "zh": "{arm} {of} 题中 {n} 题（其中 {base} 题由基座模型不带资料作答）",
        "en": "{arm} {n} of {of} ({base} answered by the base model without passages)"},
    "eval.md.learn_note": {
        "zh": "训练集问题：从适配器训练用过的 {of} 道题中固定抽取的 {n} 道。得分远高于留出集说明是死记硬背，而不是学会。相同：与基座回答逐字相同。循环：把同一行或同一短语重复 3 次及以上的回答（metrics.loop_unit）。长度按字符计。",
        "en": "Training questions: a fixed sample of {n} of the {of} questions the adapter was trained on. A score far above the held-out one is memorisation, not learning. Identical: answers equal to base's word for word. Looping: answers that repeat a line or phrase 3+ times (metrics.loop_unit). Length in characters."},
    "eval.md.learn_note_none": {
        "zh": "没有回答训练集问题（训练集抽题数为 0），所以无法与留出集得分对比是否死记硬背。相同：与基座回答逐字相同。循环：把同一行或同一短语重复 3 次及以上的回答（metrics.loop_unit）。长度按字符计。",
        "en": "No training questions were answered (training-question sample 0), so memorisation cannot be compared with the held-out score. Identical: answers equal to base's word for word. Looping: answers that repeat a line or phrase 3+ times (metrics.loop_unit). Length in characters."},
    "eval.learn.held_out.token_f1": {
        "zh": "词元 F1（留出）",
        "en": "Token F1 held-out"},
    "eval.learn.train.token_f1": {
        "zh": "词元 F1（训练）",
        "en": "Token F1 training"},
    "eval.learn.held_out.key_phrase_recall": {
        "zh": "关键信息召回（留出）",
        "en": "Key-phrase recall held-out"},
    "eval.learn.train.key_phrase_recall": {
        "zh": "关键信息召回（训练）",
        "en": "Key-phrase recall training"},
    "eval.learn.held_out.identical_to_base": {
        "zh": "与基座相同（%）",
        "en": "Identical to base (%)"},
    "eval.learn.held_out.looping": {
        "zh": "循环回答",
        "en": "Looping answers"},
    "eval.learn.held_out.mean_chars": {
        "zh": "平均长度（字符）",
        "en": "Mean length (chars)"},
    "eval.md.resources": {
        "zh": "速度与内存",
        "en": "Speed and memory"},
    "eval.md.model": {
        "zh": "模型",
        "en": "Model"},
    "eval.md.note": {
        "zh": "设备 {device}，权重 {dtype}。贪心解码。置信区间：按问题做配对自助重采样；区间不含 0 说明在该测试集上差异真实存在。延迟为每个回答在其批次中分摊的时间；CPU 上的峰值内存是进程至今的峰值。",
        "en": "Device {device}, weights {dtype}. Greedy decoding. CI: paired bootstrap over questions; an interval that excludes 0 is a real difference on this test set. Latency is each answer's share of its batch; on CPU peak memory is the process peak so far."},
    "eval.res.tokens_per_s": {
        "zh": "生成速度（token/秒）",
        "en": "Generated tokens/s"},
    "eval.res.mean_latency_s": {
        "zh": "每个回答耗时（秒）",
        "en": "Seconds per answer"},
    "eval.res.peak_memory_mb": {
        "zh": "峰值内存（MB）",
        "en": "Peak memory (MB)"},
    "eval.res.wall_time_s": {
        "zh": "训练耗时（秒）",
        "en": "Training time (s)"},
    "eval.res.trainable_params": {
        "zh": "可训练参数量",
        "en": "Trainable parameters"},
    "eval.res.adapter_size_mb": {
        "zh": "适配器大小（MB）",
        "en": "Adapter size (MB)"},
    "metric.exact_match": {
        "zh": "完全匹配",
        "en": "Exact match"},
    "metric.token_f1": {
        "zh": "词元 F1",
        "en": "Token F1"},
    "metric.lcs_f1": {
        "zh": "最长公共子串 F1（CMRC）",
        "en": "LCS F1 (CMRC)"},
    "metric.rouge_l": {
        "zh": "ROUGE-L",
        "en": "ROUGE-L"},
    "metric.bleu4": {
        "zh": "BLEU-4",
        "en": "BLEU-4"},
    "metric.keyword_recall": {
        "zh": "关键词召回率",
        "en": "Keyword recall"},
    "metric.key_phrase_recall": {
        "zh": "关键信息召回率",
        "en": "Key-phrase recall"},
    "metric.passage_recall": {
        "zh": "段落所含事实",
        "en": "Facts in the passages"},
    "metric.answer_recall": {
        "zh": "回答所含事实",
        "en": "Facts in the answer"},
    "metric.kept": {
        "zh": "保留（段落中的事实被说出的比例）",
        "en": "Kept (of the passages' facts, share stated)"},
    "metric.invented": {
        "zh": "编造（每个回答中未见于段落和问题的具体信息数）",
        "en": "Invented (specifics per answer in neither passages nor question)"},
    "eval.md.facts": {
        "zh": "事实在哪里丢失",
        "en": "Where the facts are lost"},
    "eval.md.facts_note": {
        "zh": "事实 = 参考答案的关键信息（数字、日期、网址、引号中的术语、专有名词）加上文件给出的关键词。段落所含事实：检索到并放入提示的段落（截断后）包含其中多少；回答所含事实：回答说出了多少；保留：段落中有的事实，回答说出的比例（段落一条都没有时不计）；编造：回答中的数字、日期、时间、金额、电话、网址和地名，既不在段落里也不在问题里的个数（没有段落的方案，凡问题中没有的都算）。至少编造一处的回答：{with_invented}。",
        "en": "Facts = the reference's key phrases (numbers, dates, URLs, quoted terms, proper nouns) plus the file's keywords. Facts in the passages: how many of them the passages in the prompt (as clipped) contain; facts in the answer: how many the answer states; kept: of the facts the passages held, the share the answer states (not counted where they held none); invented: the numbers, dates, times, amounts, phone numbers, URLs and place names in the answer that are in neither the passages nor the question (for an arm without passages, every one not in the question). Answers with at least one invented: {with_invented}."},
    # ---- ui (hust_sft/ui/) ----
    "ui.eval.chart_y": {
        "zh": "均值（%）",
        "en": "Mean (%)"},
    "ui.title": {
        "zh": "华科学生手册 LoRA 微调",
        "en": "HUST handbook LoRA fine-tuning"},
    "ui.subtitle": {
        "zh": "在学生手册问答数据上训练 LoRA 适配器，与基座模型并排对比，如实评测，并发布。",
        "en": "Train a LoRA adapter on the student-handbook Q&A set, compare it with the base model side by side, measure it honestly, publish it."},
    "ui.demo_banner": {
        "zh": "⚠ **演示模式**：模型是一个**随机权重**的微型网络（回答是乱码），数据是内置的示例手册。训练、评测、投票等其余功能都是真实运行的。",
        "en": "⚠ **Demo mode**: the model is a tiny network with **random weights** (answers are gibberish) and the data is the bundled sample handbook. Everything else — training, evaluation, voting — is real."},
    "ui.tab.train": {
        "zh": "训练",
        "en": "Train"},
    "ui.tab.chat": {
        "zh": "对话",
        "en": "Chat"},
    "ui.tab.evaluate": {
        "zh": "评测",
        "en": "Evaluate"},
    "ui.tab.arena": {
        "zh": "盲评 A/B",
        "en": "Blind A/B"},
    "ui.tab.publish": {
        "zh": "发布",
        "en": "Publish"},
    "ui.refresh": {
        "zh": "↻ 刷新",
        "en": "↻ Refresh"},
    "ui.split.train": {
        "zh": "训练集",
        "en": "train"},
    "ui.split.validation": {
        "zh": "验证集",
        "en": "validation"},
    "ui.split.test": {
        "zh": "测试集",
        "en": "test"},
    "ui.status.starting": {
        "zh": "启动中",
        "en": "starting"},
    "ui.status.running": {
        "zh": "训练中",
        "en": "running"},
    "ui.status.stopping": {
        "zh": "停止中（正在保存适配器）",
        "en": "stopping (saving the adapter)"},
    "ui.status.completed": {
        "zh": "已完成",
        "en": "completed"},
    "ui.status.stopped": {
        "zh": "已停止",
        "en": "stopped"},
    "ui.status.failed": {
        "zh": "失败",
        "en": "failed"},
    "ui.status.pending": {
        "zh": "等待中",
        "en": "pending"},
    "ui.status.unknown": {
        "zh": "未知",
        "en": "unknown"},
    "ui.lock.login": {
        "zh": "在这个公开 Space 上，训练和发布只对所有者（{owner}）开放。如果你是所有者，请在“发布”页用 Hugging Face 登录；否则可以复制（Duplicate）这个 Space 自己训练。",
        "en": "Training and publishing on this public Space are reserved for its owner ({owner}). Sign in with Hugging Face (Publish tab) if you are the owner, or duplicate the Space to train your own."},
    "ui.lock.not_owner": {
        "zh": "你已以 {user} 登录，但这个 Space 的训练和发布只对所有者（{owner}）开放。请复制（Duplicate）这个 Space 自己训练。",
        "en": "Signed in as {user}, but training and publishing on this Space are reserved for its owner ({owner}). Duplicate the Space to train your own."},
    # ---- access (hust_sft/access.py): what a visitor of a public Space may do ----
    "ui.lock.no_oauth": {
        "zh": "此应用设置了 SPACE_ID，却不在 Hugging Face Spaces 上运行（SYSTEM 不是 'spaces'）；这里的登录只是 Gradio 的本地模拟，任何人都能登录，因此训练、上传、数据预览和发布一律拒绝（所有者：{owner}）。请在 Space 上运行，或在自己的机器上去掉 SPACE_ID。",
        "en": "This app has SPACE_ID set but does not run on Hugging Face Spaces (SYSTEM is not 'spaces'), where sign-in would be Gradio's local mock that signs anyone in, so training, uploads, data previews and publishing are refused (owner: {owner}). Run it on a Space, or unset SPACE_ID to use it on your own machine."},
    "access.error.url_owner_only": {
        "zh": "数据 URL 由本服务器去请求，因此在公开 Space 上只有所有者（{owner}）可以使用；请改为上传文件。",
        "en": "A data URL is fetched by this server, so on a public Space only its owner ({owner}) may use one; upload the file instead."},
    "access.error.knowledge_not_uploaded": {
        "zh": "{file}：访客只能使用上传到本应用的知识文件（训练页的“上传知识文件”），不能使用服务器上的文件。",
        "en": "{file}: a visitor may use only knowledge files uploaded to this app (Upload knowledge files on the Train tab), not files of the server."},
    "access.error.local_data": {
        "zh": "{file}：访客的训练数据只能是内置数据、上传到本应用的文件（训练页的“上传”）或 Hub 数据集，不能是服务器上的文件。",
        "en": "{file}: a visitor's training data may be the built-in data, a file uploaded to this app (Upload on the Train tab) or a Hub dataset, not a file of the server."},
    "access.error.local_model": {
        "zh": "{field}：访客只能填写 Hub 上的模型 id（owner/name），不能填写服务器上的路径（{value}）。",
        "en": "{field}: a visitor may name only a model id on the Hub (owner/name), not a path of the server ({value})."},
    "access.error.unknown_run": {
        "zh": "运行“{run}”不在运行列表中；请从列表中按名称选择一个已保存适配器的运行。",
        "en": "Run '{run}': not in the runs table; pick a run with a saved adapter from the list (by its name)."},
    "access.error.adapter_id": {
        "zh": "Hub id“{value}”：格式应为 owner/name 或 owner/name@revision（字母、数字、'-'、'_'、'.'）；这里不接受服务器上的文件夹。",
        "en": "Hub id '{value}': expected owner/name or owner/name@revision (letters, digits, '-', '_', '.'); folders of this server are not accepted here."},
    "access.error.adapter_rank": {
        "zh": "适配器 {source}：LoRA 秩 {rank} 超过本应用的上限 {max}（HUST_SFT_MAX_ADAPTER_RANK）。",
        "en": "Adapter {source}: LoRA rank {rank} is above this app's limit of {max} (HUST_SFT_MAX_ADAPTER_RANK)."},
    "access.error.adapter_size": {
        "zh": "适配器 {source}：权重 {mb} MB，超过本应用的上限 {max} MB（HUST_SFT_MAX_ADAPTER_MB）。",
        "en": "Adapter {source}: its weights are {mb} MB, above this app's limit of {max} MB (HUST_SFT_MAX_ADAPTER_MB)."},
    "access.error.adapter_base": {
        "zh": "适配器 {source} 是在 {trained} 上训练的，而本应用用 {base} 回答；请选择 {base} 的适配器。",
        "en": "Adapter {source} was trained on {trained}, but this app answers with {base}; pick an adapter of {base}."},
    "access.error.adapter_config": {
        "zh": "适配器 {source}：{field} 无效（得到 {value}）。",
        "en": "Adapter {source}: {field} is not valid (got {value})."},
    "access.error.adapter_missing": {
        "zh": "适配器 {source}：其文件夹中没有 adapter_config.json。",
        "en": "Adapter {source}: no adapter_config.json in its folder."},
    "access.error.adapter_not_found": {
        "zh": "适配器 {source}：Hub 上没有这个公开模型仓库（不会替访客读取私有仓库）。",
        "en": "Adapter {source}: no such public model repo on the Hub (private repos are never read for visitors)."},
    "access.error.adapter_hub": {
        "zh": "适配器 {source}：无法读取 Hub（{error}）。",
        "en": "Adapter {source}: the Hub could not be read ({error})."},
    "access.error.adapter_files": {
        "zh": "适配器 {source}：仓库中没有 {file}（本应用只加载以 safetensors 保存的 LoRA 适配器）。",
        "en": "Adapter {source}: the repo has no {file} (this app loads LoRA adapters saved as safetensors)."},
    "access.error.data_changed": {
        "zh": "数据文件 {path} 的 sha256 是 {now}…，而运行“{run}”训练时是 {recorded}…（run.json data.sha256）。文件在训练后被改动，其测试集不可信；请恢复该文件或重新训练。",
        "en": "Data file {path}: its sha256 is {now}…, but run '{run}' was trained on {recorded}… (run.json data.sha256). The file changed since training, so its test split cannot be trusted; restore the file or train again."},
    "ui.train.preset": {
        "zh": "预设",
        "en": "Preset"},
    "ui.train.run_name": {
        "zh": "运行名称",
        "en": "Run name"},
    "ui.train.run_name_help": {
        "zh": "运行文件夹名（字母、数字、'-'、'_'、'.'）；留空则用日期时间命名。",
        "en": "Folder name of the run (letters, digits, '-', '_', '.'); empty: a name with the date and time."},
    "ui.train.group.data": {
        "zh": "数据",
        "en": "Data"},
    "ui.train.group.model": {
        "zh": "模型",
        "en": "Model"},
    "ui.train.group.lora": {
        "zh": "LoRA",
        "en": "LoRA"},
    "ui.train.group.memory": {
        "zh": "显存与速度",
        "en": "Memory and speed"},
    "ui.train.group.train": {
        "zh": "训练",
        "en": "Training"},
    "ui.train.group.retrieval": {
        "zh": "检索（RAG）",
        "en": "Retrieval (RAG)"},
    "ui.train.source": {
        "zh": "数据来源",
        "en": "Data source"},
    "ui.train.source.builtin": {
        "zh": "内置学生手册数据",
        "en": "Built-in handbook set"},
    "ui.train.source.upload": {
        "zh": "上传文件",
        "en": "Upload a file"},
    "ui.train.source.hub": {
        "zh": "Hugging Face 数据集",
        "en": "Hugging Face dataset"},
    "ui.train.source.url": {
        "zh": "网址",
        "en": "URL"},
    "ui.train.upload": {
        "zh": "问答文件（.jsonl / .json）",
        "en": "Q&A file (.jsonl / .json)"},
    "ui.train.preview": {
        "zh": "加载并预览数据",
        "en": "Load and preview the data"},
    "ui.train.col.split": {
        "zh": "划分",
        "en": "Split"},
    "ui.train.col.question": {
        "zh": "问题",
        "en": "Question"},
    "ui.train.col.answer": {
        "zh": "回答",
        "en": "Answer"},
    "ui.train.knowledge_upload": {
        "zh": "上传知识文件（PDF / DOCX / Markdown / 文本）",
        "en": "Upload knowledge files (PDF / DOCX / Markdown / text)"},
    "ui.train.knowledge_pdf_ok": {
        "zh": "✓ {file}：{pages} 页，{passages} 个段落",
        "en": "✓ {file}: {pages} pages, {passages} passages"},
    "ui.train.knowledge_doc_ok": {
        "zh": "✓ {file}：{passages} 个段落，{chars} 个字符",
        "en": "✓ {file}: {passages} passages, {chars} characters"},
    "ui.train.knowledge_pages_without_text": {
        "zh": "；{count} 页没有文字层（扫描页？不会被检索到）：{pages}",
        "en": "; {count} pages without a text layer (scanned? they cannot be found): {pages}"},
    "ui.train.knowledge_chunk_default": {
        "zh": "段落数按每段最多 {chars} 个字符计；“每段最多字符数”为 0 时，训练开始时会按数据推导段落大小，段落数可能不同。",
        "en": "Passages counted at up to {chars} characters each; with the passage size at 0 it is derived from the data when training starts, so the count may differ."},
    "ui.train.knowledge_bad": {
        "zh": "✗ {error}（未加入）",
        "en": "✗ {error} (not added)"},
    "ui.train.preview_report": {
        "zh": "**{source}**（sha256 {sha}…）— {splits}\n\n```\n{report}\n```",
        "en": "**{source}** (sha256 {sha}…) — {splits}\n\n```\n{report}\n```"},
    "ui.train.preview_error": {
        "zh": "✗ {error}",
        "en": "✗ {error}"},
    "ui.train.start": {
        "zh": "▶ 开始训练",
        "en": "▶ Start training"},
    "ui.train.stop": {
        "zh": "■ 停止",
        "en": "■ Stop"},
    "ui.train.started": {
        "zh": "✓ 已开始训练：运行 **{run}**。可以关闭本页，训练会继续；回来时本页会自动重新连接。",
        "en": "✓ Training started: run **{run}**. You can close this page; it keeps running and this tab re-attaches when you come back."},
    "ui.train.busy": {
        "zh": "已有运行正在训练：**{run}**。请先停止它或等待其结束。",
        "en": "A run is already training: **{run}**. Stop it first or wait until it finishes."},
    "ui.train.bad_settings": {
        "zh": "✗ 设置有误：{error}",
        "en": "✗ Settings: {error}"},
    "ui.train.start_failed": {
        "zh": "✗ 无法开始训练：{error}",
        "en": "✗ Could not start training: {error}"},
    "ui.train.nothing_running": {
        "zh": "当前没有正在训练的运行。",
        "en": "Nothing is training right now."},
    "ui.train.stopping": {
        "zh": "■ 已请求 **{run}** 停止；它会先保存适配器。",
        "en": "■ Asked **{run}** to stop; it saves its adapter first."},
    "ui.train.zero_gpu": {
        "zh": "ZeroGPU 硬件上不能训练：ZeroGPU Space 只在单次函数调用的几分钟内借出 GPU，而训练是长时间运行的后台进程。请使用独占 GPU 的 Space，或在本地运行 train.py；对话、评测和投票在这里可以使用。",
        "en": "Training is disabled on ZeroGPU hardware: a ZeroGPU Space lends a GPU to one function call for a few minutes, and training runs as a long background process. Use a Space with a dedicated GPU, or run train.py locally; chat, evaluation and voting work here."},
    "ui.train.no_runs": {
        "zh": "还没有任何运行。",
        "en": "No runs yet."},
    "ui.train.figures": {
        "zh": "第 {step} / {total} 步（{pct}%）· 预计剩余 {eta} · 已用 {elapsed} · {tps} token/秒 · 峰值内存 {mem} MB",
        "en": "Step {step} / {total} ({pct}%) · ETA {eta} · elapsed {elapsed} · {tps} tokens/s · peak memory {mem} MB"},
    "ui.train.figures_done.steps": {
        "zh": "{step} / {total} 步（{pct}%）",
        "en": "{step} / {total} steps ({pct}%)"},
    "ui.train.figures_done.took": {
        "zh": "用时 {elapsed}",
        "en": "took {elapsed}"},
    "ui.train.figures_done.tps": {
        "zh": "{tps} token/秒",
        "en": "{tps} tokens/s"},
    "ui.train.figures_done.mem": {
        "zh": "峰值内存 {mem} MB",
        "en": "peak memory {mem} MB"},
    "ui.train.series.title": {
        "zh": "曲线",
        "en": "Curve"},
    "ui.train.axis.step": {
        "zh": "优化步",
        "en": "optimizer step"},
    "ui.train.axis.loss": {
        "zh": "损失",
        "en": "loss"},
    "ui.train.series.train": {
        "zh": "训练损失",
        "en": "train loss"},
    "ui.train.series.val": {
        "zh": "验证损失",
        "en": "validation loss"},
    "ui.train.loss_curve": {
        "zh": "损失",
        "en": "Loss"},
    "ui.train.log": {
        "zh": "日志（最后几行）",
        "en": "Log (last lines)"},
    "ui.train.runs_persistent": {
        "zh": "运行保存在 `{path}`，位于持久存储上：Space 重启后仍在，中断的运行可以在下方继续。",
        "en": "Runs are kept in `{path}`, on persistent storage: they survive a restart of the Space, and an interrupted run can be resumed below."},
    "ui.train.runs_ephemeral": {
        "zh": "运行保存在 `{path}`。在 Space 上这块磁盘每次重启都会被清空：请开启持久存储（运行会保存到 /data/runs），或设置 HUST_SFT_RUNS 来保留它们。",
        "en": "Runs are kept in `{path}`. On a Space this disk is wiped at every restart: enable persistent storage (runs then go to /data/runs) or set HUST_SFT_RUNS to keep them."},
    "ui.train.resume_run": {
        "zh": "中断的运行",
        "en": "Interrupted run"},
    "ui.train.resume_help": {
        "zh": "训练未到结尾就停止（重启、崩溃或点了停止）且留有检查点的运行。",
        "en": "Runs whose training stopped before the end (a restart, a crash, Stop) and left a checkpoint."},
    "ui.train.resume": {
        "zh": "继续训练",
        "en": "Resume"},
    "ui.train.nothing_to_resume": {
        "zh": "请选择一个留有检查点的中断运行。",
        "en": "Pick an interrupted run that has a checkpoint."},
    "ui.train.resumed": {
        "zh": "✓ 正在从 {checkpoint} 继续运行 **{run}**，沿用它开始时的设置。",
        "en": "✓ Resuming run **{run}** from {checkpoint}, with the settings it was started with."},
    "ui.train.past_runs": {
        "zh": "历次运行",
        "en": "Runs"},
    "ui.runs.col.name": {
        "zh": "运行",
        "en": "Run"},
    "ui.runs.col.status": {
        "zh": "状态",
        "en": "Status"},
    "ui.runs.col.started": {
        "zh": "开始时间",
        "en": "Started"},
    "ui.runs.col.steps": {
        "zh": "步数",
        "en": "Steps"},
    "ui.runs.col.train_loss": {
        "zh": "训练损失",
        "en": "Train loss"},
    "ui.runs.col.val_loss": {
        "zh": "验证损失",
        "en": "Val. loss"},
    "ui.runs.col.wall_time": {
        "zh": "用时",
        "en": "Time"},
    "ui.runs.col.adapter": {
        "zh": "适配器",
        "en": "Adapter"},
    "ui.runs.col.eval": {
        "zh": "已评测",
        "en": "Evaluated"},
    "ui.chat.run": {
        "zh": "已训练的运行",
        "en": "Trained run"},
    "ui.chat.run_help": {
        "zh": "本 Space 中已完成的运行（使用其适配器和系统提示词）。",
        "en": "A finished run of this Space (its adapter and system prompt are used)."},
    "ui.chat.hub": {
        "zh": "……或 Hub 上的适配器",
        "en": "…or an adapter on the Hub"},
    "ui.chat.hub_help": {
        "zh": "LoRA 适配器仓库的 owner/name；填写后优先于上面的运行。",
        "en": "owner/name of a LoRA adapter repository; wins over the run above."},
    "ui.chat.base": {
        "zh": "基座模型",
        "en": "Base model"},
    "ui.chat.tuned": {
        "zh": "微调后",
        "en": "Fine-tuned"},
    "ui.chat.question": {
        "zh": "你的问题",
        "en": "Your question"},
    "ui.chat.placeholder": {
        "zh": "例如：校园卡丢了怎么补办？",
        "en": "e.g. How do I replace a lost campus card?"},
    "ui.chat.send": {
        "zh": "同时提问",
        "en": "Ask both"},
    "ui.chat.clear": {
        "zh": "清空",
        "en": "Clear"},
    "ui.chat.generation": {
        "zh": "生成设置",
        "en": "Generation settings"},
    "ui.chat.empty_question": {
        "zh": "请先输入问题。",
        "en": "Type a question first."},
    "ui.chat.no_adapter": {
        "zh": "（选择一个已训练的运行或 Hub 适配器，即可看到微调后的回答。）",
        "en": "(Pick a trained run or a Hub adapter to see the fine-tuned answer.)"},
    "ui.chat.failed": {
        "zh": "无法回答：{error}",
        "en": "Could not answer: {error}"},
    "ui.chat.retrieval": {
        "zh": "检索后回答",
        "en": "Answer with retrieval"},
    "ui.chat.retrieval_help": {
        "zh": "提问时附上检索到的手册资料（该运行自己的索引），并在回答下方列出。",
        "en": "Ask with the handbook passages retrieval finds (the run's own index) and list them under the answer."},
    "ui.chat.sources": {
        "zh": "**提供给模型的资料**（可据此核对回答）：",
        "en": "**Sources given to the model** (check the answer against them):"},
    "ui.chat.sources_none": {
        "zh": "**资料：**没有检索到与该问题相关的资料。",
        "en": "**Sources:** retrieval found no passage for this question."},
    "ui.chat.sources_off_topic": {
        "zh": "**资料：**没有与该问题足够相关的手册段落（离题），因此由基座模型不带资料作答。",
        "en": "**Sources:** no handbook passage is relevant enough to this question (off topic), so the base model answered it without passages."},
    "ui.chat.source_where": {
        "zh": "{source}，相关度 {pct}%",
        "en": "{source}, relevance {pct}%"},
    "ui.eval.run_help": {
        "zh": "在该运行自己的留出测试集上评测（数据设置与其训练时相同）。",
        "en": "Evaluated on the run's own held-out test split (same data settings as its training)."},
    "ui.eval.run": {
        "zh": "评测所选对比组",
        "en": "Evaluate the chosen arms"},
    "ui.eval.none_yet": {
        "zh": "该运行尚未评测。",
        "en": "This run has not been evaluated yet."},
    "ui.eval.failed": {
        "zh": "评测失败：{error}",
        "en": "Evaluation failed: {error}"},
    "ui.eval.summary": {
        "zh": "汇总（均值 %；各组 − 基座，以及 微调+检索 − 基座+检索，附 95% 自助法置信区间）",
        "en": "Summary (mean %; each arm − base, and tuned+retrieval − base+retrieval, with 95% bootstrap intervals)"},
    "ui.eval.chart": {
        "zh": "各对比组（均值 %）",
        "en": "Arms compared (mean %)"},
    "ui.eval.per_question": {
        "zh": "逐题结果（点击列标题排序）",
        "en": "Per question (click a column header to sort)"},
    "ui.eval.download": {
        "zh": "逐题结果（CSV）",
        "en": "Per-question results (CSV)"},
    "ui.eval.col.split": {
        "zh": "数据集",
        "en": "Set"},
    "ui.eval.col.metric": {
        "zh": "指标",
        "en": "Metric"},
    "ui.eval.col.diff": {
        "zh": "{model} − {against} [95% CI]",
        "en": "{model} − {against} [95% CI]"},
    "ui.eval.learn": {
        "zh": "学会了吗？（留出集与训练集问题对比、与基座相同、循环、长度）",
        "en": "Did it learn? (held-out vs training questions, copies of base, loops, length)"},
    "ui.eval.old_format": {
        "zh": "这份评测由旧版本生成；重新评测后即可在此查看。",
        "en": "This evaluation was written by an older version; run it again to see it here."},
    "ui.eval.col.question": {
        "zh": "问题",
        "en": "Question"},
    "ui.eval.col.reference": {
        "zh": "参考答案",
        "en": "Reference answer"},
    "ui.eval.col.answer": {
        "zh": "回答：{model}",
        "en": "Answer: {model}"},
    "ui.eval.col.facts": {
        "zh": "事实：{model}",
        "en": "Facts: {model}"},
    "ui.eval.facts_cell": {
        "zh": "段落含 {shown} · 回答含 {said} · 丢失：{lost} · 编造：{invented}",
        "en": "passages {shown} · answer {said} · lost: {lost} · invented: {invented}"},
    "ui.arena.intro": {
        "zh": "输入一个问题（或从测试集中抽取）。两个回答以 **回答 A** 和 **回答 B** 随机顺序显示——分别来自你选的两个对比组（基座或微调，各自可带检索；默认基座对微调）。投票后揭晓各是哪个。",
        "en": "Ask a question (or draw one from the test split). Two answers appear as **Answer A** and **Answer B** in random order — one from each arm you pick (base or fine-tuned, each with or without retrieval; base vs tuned by default). Vote, then see which was which."},
    "ui.arena.question": {
        "zh": "问题",
        "en": "Question"},
    "ui.arena.draw": {
        "zh": "抽取测试题",
        "en": "Draw a test question"},
    "ui.arena.new": {
        "zh": "生成两个回答",
        "en": "Get two answers"},
    "ui.arena.answer_a": {
        "zh": "回答 A",
        "en": "Answer A"},
    "ui.arena.answer_b": {
        "zh": "回答 B",
        "en": "Answer B"},
    "ui.arena.vote_a": {
        "zh": "A 更好",
        "en": "A is better"},
    "ui.arena.vote_b": {
        "zh": "B 更好",
        "en": "B is better"},
    "ui.arena.vote_tie": {
        "zh": "平局",
        "en": "Tie"},
    "ui.arena.vote_both_bad": {
        "zh": "都不好",
        "en": "Both bad"},
    "ui.arena.reveal": {
        "zh": "谢谢！**A** 是 **{a}**，**B** 是 **{b}**。你的投票：{vote}。",
        "en": "Thanks! **A** was **{a}**, **B** was **{b}**. Your vote: {vote}."},
    "ui.arena.already": {
        "zh": "你已经为这一对投过票了，请生成新的一对。",
        "en": "You already voted on this pair; get a new one."},
    "ui.arena.pending": {
        "zh": "你之前有一对尚未投票的回答，已重新显示。",
        "en": "You have an unvoted pair from before; here it is again."},
    "ui.arena.no_pair": {
        "zh": "请先生成两个回答。",
        "en": "Get two answers first."},
    "ui.arena.need_run": {
        "zh": "请先选择一个已训练的运行或 Hub 适配器。",
        "en": "Pick a trained run or a Hub adapter first."},
    "ui.arena.empty_question": {
        "zh": "请先输入或抽取一个问题。",
        "en": "Type or draw a question first."},
    "ui.arena.no_test": {
        "zh": "该运行的测试集为空。",
        "en": "The run's test split is empty."},
    "ui.arena.failed": {
        "zh": "无法生成回答对：{error}",
        "en": "Could not make a pair: {error}"},
    "ui.arena.results": {
        "zh": "结果（全部投票）",
        "en": "Results (all votes)"},
    "ui.arena.base_name": {
        "zh": "基座（{model}）",
        "en": "base ({model})"},
    "ui.arena.col.model": {
        "zh": "对比组",
        "en": "Arm"},
    "ui.arena.col.against": {
        "zh": "对手",
        "en": "Against"},
    "ui.arena.col.win_rate": {
        "zh": "胜率（%）",
        "en": "Win rate (%)"},
    "ui.arena.arm_1": {
        "zh": "对比组 1",
        "en": "Arm 1"},
    "ui.arena.arm_2": {
        "zh": "对比组 2",
        "en": "Arm 2"},
    "ui.arena.two_arms": {
        "zh": "请选择两个不同的对比组（base、base+retrieval、tuned、tuned+retrieval）。",
        "en": "Pick two different arms (base, base+retrieval, tuned, tuned+retrieval)."},
    "ui.arena.col.ci": {
        "zh": "95% 区间",
        "en": "95% interval"},
    "ui.arena.col.votes": {
        "zh": "票数",
        "en": "Votes"},
    "ui.arena.col.tuned_wins": {
        "zh": "该组更好",
        "en": "Arm better"},
    "ui.arena.col.base_wins": {
        "zh": "对手更好",
        "en": "Against better"},
    "ui.arena.col.ties": {
        "zh": "平局",
        "en": "Ties"},
    "ui.arena.col.both_bad": {
        "zh": "都不好",
        "en": "Both bad"},
    "ui.publish.intro": {
        "zh": "把运行的适配器和模型卡上传到 Hugging Face Hub。请在下方登录（令牌只保存在你的会话中），或在 Space 中设置 HF_TOKEN 密钥。",
        "en": "Upload a run's adapter and a model card to the Hugging Face Hub. Sign in below (the token stays in your session), or set an HF_TOKEN secret on the Space."},
    "ui.publish.intro_local": {
        "zh": "把运行的适配器和模型卡上传到 Hugging Face Hub。这里不是 Space，没有登录按钮：请在启动应用前设置环境变量 HF_TOKEN（一个有写权限的令牌，例如 `HF_TOKEN=hf_… python app.py`）。",
        "en": "Upload a run's adapter and a model card to the Hugging Face Hub. This is not a Space, so there is no sign-in button: set the HF_TOKEN environment variable (a token with write access) before starting the app, e.g. `HF_TOKEN=hf_… python app.py`."},
    "ui.publish.login": {
        "zh": "用 Hugging Face 登录",
        "en": "Sign in with Hugging Face"},
    "ui.publish.logout": {
        "zh": "退出登录（{}）",
        "en": "Sign out ({})"},
    "ui.publish.repo": {
        "zh": "仓库",
        "en": "Repository"},
    "ui.publish.repo_help": {
        "zh": "owner/name，例如 alice/hust-sft-lora",
        "en": "owner/name, e.g. alice/hust-sft-lora"},
    "ui.publish.private": {
        "zh": "私有仓库",
        "en": "Private repository"},
    "ui.publish.go": {
        "zh": "发布",
        "en": "Publish"},
    "ui.publish.no_run": {
        "zh": "请选择一个已保存适配器的运行。",
        "en": "Pick a run that has a saved adapter."},
    "ui.publish.failed": {
        "zh": "✗ 发布失败：{error}",
        "en": "✗ Publishing failed: {error}"},
    "ui.publish.done": {
        "zh": "✓ 已发布：{url}",
        "en": "✓ Published: {url}"},
}

# Per-language views of MESSAGES, built once (a missing language is left out here; the parity test names it).
STRINGS: dict[str, dict[str, str]] = {lang: {k: v[lang] for k, v in MESSAGES.items() if lang in v} for lang in LANGS}
EN, ZH = STRINGS["en"], STRINGS["zh"]


def cli_lang(argv: list[str] | None = None, environ=None) -> str:
    """The language of a command-line tool: `--lang X` in argv, else the locale (LC_ALL, LC_MESSAGES, LANG:
    zh_CN.UTF-8 → zh), else English. Read before argparse so `--help` is in that language too."""
    import os
    import sys

    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--lang=") else (
            argv[i + 1] if arg == "--lang" and i + 1 < len(argv) else None)
        if value in LANGS:
            return value
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def t(key: str, lang: str = DEFAULT_LANG, /, **fmt) -> str:
    """The string for `key` in `lang` (falling back to English), formatted with `fmt`.

    `key` and `lang` are positional-only, so a message may itself have a parameter named `key` or `lang`
    (eval.warn.data_differs has `{key}`); before, such a call died with "got multiple values for 'key'".
    """
    table = STRINGS.get(lang, EN)
    text = table.get(key)
    if text is None:
        text = EN[key]
    return text.format(**fmt) if fmt else text


def _field_key(name: str, part: str, scope: str | None) -> str:
    # A settings group may give a shared field name its own meaning (e.g. `output` of an evaluation).
    if scope and f"field.{scope}.{name}.{part}" in EN:
        return f"field.{scope}.{name}.{part}"
    return f"field.{name}.{part}"


def field_label(name: str, lang: str = DEFAULT_LANG, scope: str | None = None) -> str:
    return t(_field_key(name, "label", scope), lang)


def field_help(name: str, lang: str = DEFAULT_LANG, scope: str | None = None) -> str:
    return t(_field_key(name, "help", scope), lang)
