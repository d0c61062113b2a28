"""Train a qlora-lab run again with sentence-transformers + PEFT (written by qlora-lab export-run).

    pip install -r requirements.txt
    python train.py                              # one GPU (or CPU with --no-4bit)
    torchrun --nproc_per_node=N train.py         # N GPUs; or: accelerate launch train.py
    python train.py --dry-run                    # print the resolved configuration, import nothing heavy

run.json next to this file holds the run's configuration; train.jsonl holds the rows it trained on,
in the order it fed them. Rows are read in that order (no shuffling): with the same global batch
(batch_size rows, split evenly over the processes, negatives gathered across them) every optimizer
step sees the same examples as the original run. What differs is only randomness (the LoRA A
initialisation, dropout masks) and float arithmetic (bitsandbytes' NF4 kernels instead of WebGPU's).

The adapter is written to --output-dir in PEFT's layout (adapter_config.json +
adapter_model.safetensors) with qlora_lab.json, which `qlora-lab merge` and the app import.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description='Train a qlora-lab run with sentence-transformers + PEFT.')
    parser.add_argument('--dry-run', action='store_true', help='print the resolved configuration as JSON and exit')
    parser.add_argument('--output-dir', default=os.path.join(HERE, 'adapter'), help='where the adapter goes (default: ./adapter)')
    parser.add_argument('--model', help='the base model folder, when run.json names a local or bundled model')
    parser.add_argument('--no-4bit', action='store_true', help='train on a full-precision base instead of NF4 (no bitsandbytes)')
    parser.add_argument('--mini-batch-size', type=int, default=32,
                        help='above this many rows per device, use the Cached (GradCache) loss with mini-batches of this size (default 32)')
    return parser.parse_args(argv)


def fail(message):
    print(f'train.py: {message}', file=sys.stderr)
    sys.exit(2)


def resolve(run, args, env):
    """The configuration this process will train with, from run.json, the options and the launcher's environment."""
    world_size = int(env.get('WORLD_SIZE', '1'))
    batch_size = run['batch_size']
    if batch_size % world_size != 0:
        fail(f'the run used batches of {batch_size} rows, which do not split evenly over {world_size} processes; use a divisor of {batch_size}')
    per_device = batch_size // world_size
    model = run['model']
    name_or_path = args.model or model['name_or_path']
    if model['kind'] != 'hub' and not args.model and not os.path.isdir(name_or_path):
        fail(f"run.json names the {model['kind']} model {model['name_or_path']!r}, which is not a folder here; give it with --model PATH")
    loss = dict(run['loss'])
    if loss['name'] != 'CosineSimilarityLoss':
        if per_device > args.mini_batch_size:
            loss['name'] = 'Cached' + loss['name']
            loss['mini_batch_size'] = args.mini_batch_size
        loss['gather_across_devices'] = world_size > 1
    rows = run['data']['rows']
    expected = run['steps'] * run['gradient_accumulation_steps'] * batch_size
    if rows != expected:
        fail(f"run.json says {rows} rows, but {run['steps']} steps × {run['gradient_accumulation_steps']} × {batch_size} need {expected}")
    return {
        'model': name_or_path,
        'revision': model['revision'] if not args.model else None,
        'quantization': 'f32' if args.no_4bit else model['quantization'],
        'pooling': run['pooling'],
        'pooling_mode': run['pooling_mode'],
        'include_prompt': run['include_prompt'],
        'do_lower_case': run['do_lower_case'],
        'normalize': run['normalize'],
        'max_seq_length': run['max_seq_length'],
        'prompts': run['prompts'],
        'column_prompts': run['column_prompts'],
        'lora': run['lora'],
        'loss': loss,
        'learning_rate': run['learning_rate'],
        'lr_scheduler_type': 'linear',
        'warmup_steps': run['warmup_steps'],
        'weight_decay': run['weight_decay'],
        'max_grad_norm': run['max_grad_norm'],
        'adam_beta1': run['adam_beta1'],
        'adam_beta2': run['adam_beta2'],
        'adam_epsilon': run['adam_epsilon'],
        'hidden_dropout': run['hidden_dropout'],
        'max_steps': run['steps'],
        'global_batch_size': batch_size,
        'per_device_batch_size': per_device,
        'world_size': world_size,
        'gradient_accumulation_steps': run['gradient_accumulation_steps'],
        'seed': run['seed'],
        'train_file': os.path.join(HERE, run['data']['train']),
        'train_rows': rows,
        'columns': run['data']['columns'],
        'output_dir': os.path.abspath(args.output_dir),
    }


def read_rows(path, columns):
    data = {column: [] for column in columns}
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            row = json.loads(line)
            if list(row) != columns:
                fail(f'{path}:{number}: expected the columns {columns}, got {list(row)}')
            for column in columns:
                data[column].append(row[column])
    return data


def train(config):
    # Heavy imports only here: --dry-run must work with a bare Python.
    import torch
    import sentence_transformers
    from datasets import Dataset
    from peft import LoraConfig
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses, models
    from transformers import set_seed

    version = tuple(int(part) for part in sentence_transformers.__version__.split('.')[:2])
    if config['world_size'] > 1 and version < (5, 1):
        fail(f'gathering in-batch negatives across processes needs sentence-transformers >= 5.1 (this is {sentence_transformers.__version__})')
    set_seed(config['seed'])
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    revision = {'revision': config['revision']} if config['revision'] else {}
    model_args = dict(revision)
    if config['quantization'] == 'nf4':
        from transformers import BitsAndBytesConfig
        # The run's NF4: blocks of 64, no double quantisation, float32 compute.
        model_args['quantization_config'] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=False,
                                                               bnb_4bit_compute_dtype=torch.float32)
        model_args['device_map'] = {'': local_rank}
    # qlora-lab drops out hidden states and embeddings, never attention probabilities.
    config_args = {**revision, 'hidden_dropout_prob': config['hidden_dropout'], 'attention_probs_dropout_prob': 0.0}
    transformer = models.Transformer(config['model'], max_seq_length=config['max_seq_length'], model_args=model_args,
                                     tokenizer_args=dict(revision), config_args=config_args, do_lower_case=config['do_lower_case'])
    # As in qlora-lab, a maximum length beyond the model's positions means all of them.
    transformer.max_seq_length = min(config['max_seq_length'], transformer.auto_model.config.max_position_embeddings)
    modules = [transformer, models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=config['pooling_mode'],
                                                        include_prompt=config['include_prompt'])]
    if config['normalize']:
        modules.append(models.Normalize())
    # Each process on its own GPU (torchrun / accelerate set LOCAL_RANK), as the 4-bit weights already are.
    device = f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu'
    model = SentenceTransformer(modules=modules, device=device, prompts={name: prompt for name, prompt in config['prompts'].items() if prompt} or None)

    lora = config['lora']
    model.add_adapter(LoraConfig(r=lora['r'], lora_alpha=lora['lora_alpha'], lora_dropout=lora['lora_dropout'], use_rslora=lora['use_rslora'],
                                 target_modules=lora['target_modules'], bias='none', task_type='FEATURE_EXTRACTION'))
    # Only the LoRA weights train. The pooler's (when a target such as "dense" reaches it) get no
    # gradient from a sentence loss, so they are frozen: DDP then has no unused parameters.
    for name, parameter in model.named_parameters():
        parameter.requires_grad = 'lora_' in name and '.pooler.' not in name

    loss_config = config['loss']
    name = loss_config['name']
    kwargs = {}
    if name != 'CosineSimilarityLoss':
        kwargs['scale'] = loss_config['scale']
        if loss_config['gather_across_devices']:
            kwargs['gather_across_devices'] = True
        if name.startswith('Cached'):
            kwargs['mini_batch_size'] = loss_config['mini_batch_size']
    loss = getattr(losses, name)(model, **kwargs)

    dataset = Dataset.from_dict(read_rows(config['train_file'], config['columns']))

    class InOrderTrainer(SentenceTransformerTrainer):
        """Batches in the file's order: the file already is the run's order, epoch shuffles included."""

        def get_batch_sampler(self, dataset, batch_size, drop_last, *args, **kwargs):
            return torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(range(len(dataset))), batch_size, drop_last)

    training_args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(config['output_dir'], 'trainer'),
        max_steps=config['max_steps'],
        per_device_train_batch_size=config['per_device_batch_size'],
        gradient_accumulation_steps=config['gradient_accumulation_steps'],
        learning_rate=config['learning_rate'],
        lr_scheduler_type=config['lr_scheduler_type'],
        warmup_steps=config['warmup_steps'],
        weight_decay=config['weight_decay'],
        max_grad_norm=config['max_grad_norm'] or 0.0,
        adam_beta1=config['adam_beta1'],
        adam_beta2=config['adam_beta2'],
        adam_epsilon=config['adam_epsilon'],
        seed=config['seed'],
        data_seed=config['seed'],
        dataloader_drop_last=True,
        logging_steps=1,
        save_strategy='no',
        report_to='none',
        ddp_find_unused_parameters=False,
        **({'prompts': config['column_prompts']} if config['column_prompts'] else {}),
    )
    trainer = InOrderTrainer(model=model, args=training_args, train_dataset=dataset, loss=loss)
    trainer.train()
    if trainer.is_world_process_zero():
        save_adapter(model, config, save_file)


def save_adapter(model, config, save_file):
    """PEFT's PeftModel layout (base_model.model.<module>.lora_A.weight), whatever this library version saves by itself."""
    out = config['output_dir']
    os.makedirs(out, exist_ok=True)
    state = model.get_adapter_state_dict()
    # The pooler's LoRA never trained (still B = 0): leaving it out changes nothing for any reader.
    tensors = {f'base_model.model.{key}': value.detach().float().contiguous().cpu() for key, value in state.items() if not key.startswith('pooler.')}
    save_file(tensors, os.path.join(out, 'adapter_model.safetensors'), metadata={'format': 'pt'})
    lora = config['lora']
    adapter_config = {
        'peft_type': 'LORA',
        'task_type': 'FEATURE_EXTRACTION',
        'base_model_name_or_path': config['model'],
        'revision': config['revision'],
        'r': lora['r'],
        'lora_alpha': lora['lora_alpha'],
        'lora_dropout': lora['lora_dropout'],
        'target_modules': lora['target_modules'],
        'use_rslora': lora['use_rslora'],
        'bias': 'none',
        'fan_in_fan_out': False,
        'inference_mode': True,
        'modules_to_save': None,
        'init_lora_weights': True,
    }
    settings = {
        'format': 'qlora-lab adapter settings',
        'version': 1,
        'base_model': config['model'],
        'revision': config['revision'],
        'quantization': config['quantization'],
        'pooling': config['pooling'],
        'normalize': config['normalize'],
        'max_seq_length': config['max_seq_length'],
        'prompts': config['prompts'],
    }
    for name, content in [('adapter_config.json', adapter_config), ('qlora_lab.json', settings)]:
        with open(os.path.join(out, name), 'w', encoding='utf-8') as f:
            json.dump(content, f, indent=2)
            f.write('\n')
    print(f'adapter written to {out}', file=sys.stderr)


def main(argv):
    args = parse_args(argv)
    with open(os.path.join(HERE, 'run.json'), encoding='utf-8') as f:
        run = json.load(f)
    config = resolve(run, args, os.environ)
    if args.dry_run:
        print(json.dumps(config, indent=2))
        return
    train(config)


if __name__ == '__main__':
    main(sys.argv[1:])
