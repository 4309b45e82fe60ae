"""The demo world's categories as data: how each looks, how it is described, how it is searched.

Two pairs are built to make video and text each carry what the other lacks:
`LOOK_ALIKE` categories share a visual signature but not words (football and golf: a green field
with a small moving ball); `DESCRIBED_ALIKE` categories share many words but not looks (travel and
nature: "scenic journey landscape"; kids and gaming: "fun play adventure").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES: tuple[str, ...] = (
    "cooking",
    "football",
    "golf",
    "travel",
    "nature",
    "news",
    "music",
    "kids",
    "gaming",
    "tech",
    "fitness",
    "space",
)
LOOK_ALIKE: tuple[tuple[str, str], ...] = (("football", "golf"),)
DESCRIBED_ALIKE: tuple[tuple[str, str], ...] = (("travel", "nature"), ("kids", "gaming"))
LANGUAGES: tuple[str, ...] = ("en", "zh")


@dataclass(frozen=True)
class VisualSignature:
    """What `render.py` paints: a background painter, a foreground painter and their colours.

    `palette` is RGB; each painter documents which palette entries it uses. `speed` scales motion.
    """

    background: str
    foreground: str
    palette: tuple[tuple[int, int, int], ...]
    speed: float = 1.0


_FIELD = VisualSignature("field", "ball", ((46, 139, 58), (64, 168, 72), (245, 245, 245), (30, 90, 35)), 1.0)

SIGNATURES: dict[str, VisualSignature] = {
    # tiles: wall, grout | pots: pot, soup, steam
    "cooking": VisualSignature(
        "tiles", "pots", ((236, 214, 170), (120, 72, 40), (70, 70, 75), (214, 90, 30), (250, 250, 250)), 0.6
    ),
    "football": _FIELD,
    "golf": _FIELD,
    # skyline: sky top, sky bottom, buildings x3, windows | cars: road, car colours
    "travel": VisualSignature(
        "skyline",
        "cars",
        ((110, 170, 230), (250, 200, 150), (90, 90, 110), (170, 90, 70), (140, 140, 150), (255, 230, 120)),
        1.0,
    ),
    # mountains: sky top, sky bottom, rock, meadow, snow | clouds: cloud
    "nature": VisualSignature(
        "mountains", "clouds", ((40, 110, 200), (170, 215, 245), (80, 95, 70), (70, 150, 50), (245, 245, 250)), 0.5
    ),
    # studio: top, bottom, monitors | anchor: skin, suit, banner, ticker text
    "news": VisualSignature(
        "studio",
        "anchor",
        ((10, 30, 90), (30, 70, 160), (90, 140, 220), (225, 180, 150), (30, 30, 40), (200, 20, 30), (250, 250, 250)),
        1.0,
    ),
    # dark: base, spotlight | equalizer: bar colours
    "music": VisualSignature(
        "dark", "equalizer", ((15, 5, 30), (120, 30, 150), (255, 40, 200), (40, 230, 255), (255, 230, 60)), 1.4
    ),
    # dots: base, dot | bouncers: saturated colours
    "kids": VisualSignature(
        "dots",
        "bouncers",
        ((255, 220, 235), (255, 250, 190), (235, 30, 40), (30, 90, 235), (255, 200, 0), (40, 190, 60)),
        1.2,
    ),
    # pixels: dark violet base, neon block colours | sprite: sprite
    "gaming": VisualSignature(
        "pixels", "sprite", ((30, 20, 70), (40, 255, 90), (190, 60, 255), (255, 70, 60), (255, 255, 255)), 1.3
    ),
    # plain: top, bottom | device: body, screen, highlight
    "tech": VisualSignature(
        "plain", "device", ((245, 245, 248), (200, 205, 215), (35, 35, 40), (60, 150, 255), (230, 240, 255)), 0.7
    ),
    # planks: wood light, wood dark, mat | barbell: bar, plates
    "fitness": VisualSignature(
        "planks", "barbell", ((205, 130, 60), (160, 90, 40), (200, 30, 30), (180, 180, 190), (20, 20, 20)), 1.6
    ),
    # stars: sky, star | planet: body, shade, ring
    "space": VisualSignature(
        "stars", "planet", ((5, 5, 25), (255, 255, 255), (230, 130, 50), (60, 200, 190), (210, 190, 150)), 0.4
    ),
}


@dataclass(frozen=True)
class Vocabulary:
    """Words of one category in one language; `sentences` may use {noun}, {adj} and {action}."""

    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    actions: tuple[str, ...]
    formats: tuple[str, ...]
    sentences: tuple[str, ...]
    tags: tuple[str, ...]


def _v(nouns, adjectives, actions, formats, sentences, tags) -> Vocabulary:
    return Vocabulary(*(tuple(part.split(";")) for part in (nouns, adjectives, actions, formats, sentences, tags)))


VOCAB: dict[str, dict[str, Vocabulary]] = {
    "en": {
        "cooking": _v(
            "pasta;curry;dumplings;noodle soup;pancakes;stir fry;roast chicken;bread",
            "easy;homemade;quick;delicious;spicy;healthy",
            "cook;make;bake;prepare",
            "recipe;tutorial;kitchen vlog;in 15 minutes",
            "We {action} {noun} step by step in a home kitchen.;Pots, pans and a hot stove: all you need for {noun}.;A simple {adj} recipe for busy weeknights.",
            "cooking;recipe;food;kitchen;homemade;dinner",
        ),
        "football": _v(
            "match;goal;penalty;derby;striker;free kick;league final;comeback",
            "amazing;last-minute;incredible;classic;top",
            "score;defend;win;take",
            "highlights;best goals;match recap;skills compilation",
            "Full {noun} highlights from the stadium with every goal.;The striker takes on the defence and the crowd goes wild.;Best football moments of the season, from kick-off to the final whistle.",
            "football;soccer;goals;highlights;match;league",
        ),
        "golf": _v(
            "swing;putt;birdie;drive;hole in one;fairway shot;chip shot;tournament",
            "perfect;smooth;long;pro;beginner",
            "improve;hit;master;fix",
            "lesson;tips;round highlights;course vlog",
            "A {adj} {noun} on the golf course, explained by a coach.;Learn to read the green and sink the putt.;Eighteen holes of golf on a sunny afternoon.",
            "golf;swing;putting;pga;golf tips;course",
        ),
        "travel": _v(
            "city streets;old town;weekend getaway;journey;landscape;skyline;road trip;scenic views",
            "scenic;breathtaking;hidden;budget;ultimate",
            "explore;visit;discover;wander",
            "travel vlog;guide;journey;itinerary",
            "A scenic journey through the {noun} with breathtaking views of the landscape.;We explore the {noun} and discover hidden spots.;Tips for your next trip: where to stay and what to see.",
            "travel;scenic;journey;landscape;explore;vlog",
        ),
        "nature": _v(
            "forest;mountains;river valley;journey;landscape;wildlife;waterfall;scenic views",
            "scenic;breathtaking;peaceful;wild;ultimate",
            "explore;discover;hike;wander",
            "documentary;journey;relaxing film;4K walk",
            "A scenic journey through the {noun} with breathtaking views of the landscape.;We explore untouched {noun} and discover wildlife.;Relaxing sounds of the wild: wind, water and birds.",
            "nature;scenic;journey;landscape;explore;relaxing",
        ),
        "news": _v(
            "election;economy;weather;markets;press conference;breaking story;world report;headlines",
            "breaking;live;daily;latest;weekly",
            "explain;report;analyse",
            "news report;bulletin;briefing;update",
            "The latest {noun} from our studio, with analysis from correspondents.;Headlines of the day in five minutes.;Live coverage and what it means for you.",
            "news;breaking;headlines;politics;report;live",
        ),
        "music": _v(
            "live set;remix;love song;guitar cover;piano ballad;dance track;concert;playlist",
            "chill;late night;live;acoustic;electronic",
            "play;mix;sing;perform",
            "music video;live session;mix;official video",
            "A {adj} {noun} under neon lights.;Turn it up: beats, bass and a light show.;Our band performs live on stage.",
            "music;live;remix;concert;song;beats",
        ),
        "kids": _v(
            "cartoon;nursery rhymes;play time;adventure;colours song;toy story;fun game;bedtime story",
            "fun;happy;colourful;silly;magic",
            "learn;play;sing;count",
            "for kids;cartoon episode;sing-along;adventure",
            "A fun adventure for kids, full of play and colours.;Let's play and learn with a {adj} {noun} together!;Bouncing balls, bright shapes and happy songs.",
            "kids;cartoon;fun;play;adventure;children",
        ),
        "gaming": _v(
            "boss fight;speedrun;adventure;level;fun game;pixel quest;walkthrough;multiplayer match",
            "fun;epic;retro;hardcore;insane",
            "play;beat;speedrun;unlock",
            "gameplay;walkthrough;let's play;stream highlights",
            "A fun adventure game: we play every level and beat the boss.;Retro pixel action with a {adj} {noun} and secrets.;Stream highlights from last night's session.",
            "gaming;gameplay;fun;play;adventure;retro",
        ),
        "tech": _v(
            "smartphone;laptop;headphones;smartwatch;tablet;camera;gadget;keyboard",
            "new;budget;honest;flagship;hands-on",
            "review;unbox;compare;test",
            "review;unboxing;comparison;first look",
            "An honest {noun} review: design, battery and screen.;We unbox and test the new {noun}.;Specs, benchmarks and whether it is worth the price.",
            "tech;review;unboxing;gadgets;smartphone;specs",
        ),
        "fitness": _v(
            "workout;HIIT session;leg day;core routine;deadlift;squats;home gym;stretching",
            "intense;20-minute;beginner;full-body;fat-burning",
            "train;lift;burn;build",
            "workout;routine;training plan;challenge",
            "A {adj} {noun} to build strength with a barbell.;Follow along: warm-up, sets and cool-down.;No excuses: train hard and track your progress.",
            "fitness;workout;gym;training;strength;hiit",
        ),
        "space": _v(
            "planets;black hole;galaxy;Mars mission;solar system;moon landing;nebula;rocket launch",
            "mysterious;cosmic;deep;incredible;stunning",
            "explain;explore;visit;discover",
            "documentary;explained;science;animation",
            "The {noun} explained with stunning animation.;Stars, planets and the mysteries of the universe.;What scientists discovered about the {noun}.",
            "space;astronomy;planets;universe;science;nasa",
        ),
    },
    "zh": {
        "cooking": _v(
            "饺子;红烧肉;面条;炒饭;麻婆豆腐;包子;番茄炒蛋;火锅",
            "简单;家常;快手;美味;麻辣;健康",
            "做;煮;烤;准备",
            "教程;食谱;厨房日常;十分钟搞定",
            "在家里的厨房一步一步教你{action}{noun}。;锅碗瓢盆齐上阵，轻松搞定{noun}。;忙碌工作日的{adj}做法。",
            "美食;烹饪;食谱;厨房;家常菜;晚餐",
        ),
        "football": _v(
            "比赛;进球;点球;德比;前锋;任意球;联赛决赛;逆转",
            "精彩;绝杀;经典;不可思议;顶级",
            "踢进;防守;赢下;主罚",
            "集锦;最佳进球;赛事回顾;技巧合集",
            "球场上的{noun}全场集锦，每个进球都不错过。;前锋突破防线，全场球迷沸腾。;本赛季最精彩的足球瞬间。",
            "足球;进球;集锦;比赛;联赛",
        ),
        "golf": _v(
            "挥杆;推杆;小鸟球;开球;一杆进洞;球道击球;切球;锦标赛",
            "完美;流畅;超远;职业;新手",
            "改进;打出;掌握;纠正",
            "教学;技巧;比赛精华;球场日记",
            "高尔夫教练讲解{adj}{noun}。;学会看果岭，把球推进洞。;阳光午后打十八洞高尔夫。",
            "高尔夫;挥杆;推杆;球场;高尔夫教学",
        ),
        "travel": _v(
            "城市街道;古镇;周末旅行;旅程;风景;天际线;自驾游;美景",
            "绝美;壮丽;小众;穷游;终极",
            "探索;游览;发现;漫步",
            "旅行vlog;攻略;旅程;行程",
            "一段风景壮丽的旅程，带你探索{noun}。;发现{noun}里的小众打卡地。;下次出行的住宿与景点建议。",
            "旅行;风景;旅程;探索;攻略",
        ),
        "nature": _v(
            "森林;群山;河谷;旅程;风景;野生动物;瀑布;美景",
            "绝美;壮丽;宁静;原始;终极",
            "探索;发现;徒步;漫步",
            "纪录片;旅程;治愈短片;漫游",
            "一段风景壮丽的旅程，带你探索{noun}。;走进原始{noun}，发现野生动物。;风声、水声与鸟鸣，治愈身心。",
            "自然;风景;旅程;探索;治愈",
        ),
        "news": _v(
            "选举;经济;天气;股市;发布会;突发事件;国际新闻;头条",
            "突发;直播;每日;最新;本周",
            "解读;报道;分析",
            "新闻报道;快讯;简报;速递",
            "演播室带来最新{noun}，记者现场分析。;五分钟看完今日头条。;直播报道及其对你的影响。",
            "新闻;头条;直播;时事;快讯",
        ),
        "music": _v(
            "现场;混音;情歌;吉他翻唱;钢琴曲;舞曲;演唱会;歌单",
            "深夜;放松;现场版;原声;电子",
            "演奏;混音;演唱;表演",
            "音乐MV;现场;合集;官方视频",
            "霓虹灯下的{adj}{noun}。;把音量调大：节拍、低音和灯光秀。;乐队舞台现场演出。",
            "音乐;现场;混音;演唱会;歌曲",
        ),
        "kids": _v(
            "动画片;儿歌;游戏时间;冒险;颜色儿歌;玩具故事;趣味游戏;睡前故事",
            "有趣;快乐;彩色;搞笑;神奇",
            "学习;玩;唱;数数",
            "儿童节目;动画;跟唱;冒险",
            "给小朋友的趣味冒险，充满游戏和色彩。;一起玩一起学{noun}！;弹跳的小球、鲜艳的形状和快乐的歌。",
            "儿童;动画;趣味;游戏;冒险",
        ),
        "gaming": _v(
            "Boss战;速通;冒险;关卡;趣味游戏;像素冒险;攻略;多人对战",
            "有趣;史诗;复古;硬核;疯狂",
            "玩;打败;速通;解锁",
            "实况;攻略;直播精彩;试玩",
            "一款有趣的冒险游戏：我们通关每一关并打败Boss。;复古像素动作游戏，{noun}和隐藏要素。;昨晚直播的精彩片段。",
            "游戏;实况;趣味;冒险;复古",
        ),
        "tech": _v(
            "手机;笔记本电脑;耳机;智能手表;平板;相机;数码产品;键盘",
            "全新;平价;真实;旗舰;上手",
            "评测;开箱;对比;测试",
            "评测;开箱;对比;初体验",
            "{noun}真实评测：设计、续航和屏幕。;开箱并测试全新{noun}。;参数、跑分以及值不值得买。",
            "科技;评测;开箱;数码;手机",
        ),
        "fitness": _v(
            "训练;燃脂操;练腿日;核心训练;硬拉;深蹲;家庭健身;拉伸",
            "高强度;二十分钟;新手;全身;燃脂",
            "训练;举铁;燃烧;练出",
            "健身;跟练;训练计划;挑战",
            "用杠铃进行{adj}{noun}，增强力量。;跟着练：热身、组数和放松。;没有借口，努力训练，记录进步。",
            "健身;训练;健身房;力量;燃脂",
        ),
        "space": _v(
            "行星;黑洞;星系;火星任务;太阳系;登月;星云;火箭发射",
            "神秘;宇宙;深空;不可思议;震撼",
            "解读;探索;造访;发现",
            "纪录片;科普;科学;动画",
            "用震撼动画讲解{noun}。;星星、行星与宇宙之谜。;科学家对{noun}的新发现。",
            "太空;天文;行星;宇宙;科普",
        ),
    },
}

TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "{adj} {noun} {format}",
        "How to {action} {noun}",
        "{noun} {format} #{n}",
        "The {adj} {noun}",
        "{format}: {adj} {noun}",
        "My {adj} {noun} {format}",
    ),
    "zh": (
        "{adj}{noun}{format}",
        "如何{action}{noun}",
        "{noun}{format}第{n}期",
        "{format}｜{adj}{noun}",
        "我的{adj}{noun}{format}",
    ),
}
# Titles that say nothing: search and classification must use the frames. Such videos get an
# empty description and no tags.
UNINFORMATIVE_TITLES: tuple[str, ...] = ("clip {n}", "VID_{n:04d}", "video {n}", "untitled {n}", "IMG_{n:04d}")

# Descriptive queries per language and category, for evaluating text-to-video search.
QUERIES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "cooking": (
            "a cooking video with pots in the kitchen",
            "someone making dinner on a stove",
            "easy homemade recipe",
        ),
        "football": (
            "football match highlights on a green pitch",
            "a soccer goal in the stadium",
            "best goals of the league",
        ),
        "golf": ("golf swing on the course", "a putt on the green", "golf lesson with tips"),
        "travel": (
            "travel vlog through a city skyline",
            "exploring old town streets on a trip",
            "a weekend getaway guide",
        ),
        "nature": (
            "mountains and forest nature documentary",
            "wildlife in a peaceful valley",
            "relaxing walk by a waterfall",
        ),
        "news": (
            "a news anchor in the studio with breaking headlines",
            "daily news report",
            "live coverage of the election",
        ),
        "music": ("a live concert with neon lights", "music video with a beat", "late night remix playlist"),
        "kids": (
            "a colourful cartoon for kids",
            "nursery rhymes sing-along for children",
            "bouncing balls for toddlers",
        ),
        "gaming": ("retro pixel video game gameplay", "boss fight walkthrough", "a let's play speedrun"),
        "tech": ("a smartphone review", "unboxing a new laptop", "gadget comparison and specs"),
        "fitness": ("a gym workout with a barbell", "full-body strength training routine", "intense HIIT exercise"),
        "space": (
            "planets and stars in outer space",
            "a black hole explained",
            "astronomy documentary about the solar system",
        ),
    },
    "zh": {
        "cooking": ("厨房烹饪视频", "在炉子上用锅做饭", "简单的家常菜做法"),
        "football": ("绿茵场上的足球比赛集锦", "球场上的精彩进球", "联赛最佳进球"),
        "golf": ("高尔夫球场挥杆", "果岭上推杆", "高尔夫教学技巧"),
        "travel": ("城市天际线旅行vlog", "旅途中游览古镇街道", "周末旅行攻略"),
        "nature": ("群山与森林的自然纪录片", "宁静山谷里的野生动物", "瀑布边的治愈漫步"),
        "news": ("演播室主播播报头条新闻", "每日新闻报道", "选举直播报道"),
        "music": ("霓虹灯下的演唱会现场", "节奏感强的音乐MV", "深夜混音歌单"),
        "kids": ("给小朋友的彩色动画片", "儿童儿歌跟唱", "弹跳小球幼儿节目"),
        "gaming": ("复古像素游戏实况", "Boss战攻略", "游戏速通试玩"),
        "tech": ("手机评测", "全新笔记本电脑开箱", "数码产品对比和参数"),
        "fitness": ("健身房杠铃训练", "全身力量训练计划", "高强度燃脂运动"),
        "space": ("太空中的行星和星星", "黑洞科普讲解", "太阳系天文纪录片"),
    },
}


def make_text(category: str, lang: str, rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """A title, a two-sentence description and 3-5 tags for one video of `category` in `lang`."""
    vocab = VOCAB[lang][category]

    def fill(template: str) -> str:
        return template.format(
            noun=_pick(vocab.nouns, rng),
            adj=_pick(vocab.adjectives, rng),
            action=_pick(vocab.actions, rng),
            format=_pick(vocab.formats, rng),
            n=int(rng.integers(1, 100)),
        )

    title = fill(_pick(TITLE_TEMPLATES[lang], rng))
    title = title[0].upper() + title[1:]
    first, second = rng.choice(len(vocab.sentences), size=2, replace=False)
    sep = "" if lang == "zh" else " "
    description = fill(vocab.sentences[first]) + sep + fill(vocab.sentences[second])
    n_tags = int(rng.integers(3, min(5, len(vocab.tags)) + 1))
    tags = [vocab.tags[i] for i in sorted(rng.choice(len(vocab.tags), size=n_tags, replace=False))]
    return title, description, tags


def uninformative_title(rng: np.random.Generator) -> str:
    """A title like "clip 123" that says nothing about the content."""
    return _pick(UNINFORMATIVE_TITLES, rng).format(n=int(rng.integers(1, 10_000)))


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]
