"""Small embedded medical tables of the synthetic source.

Records refer to these entries by short, stable keys so a stored record stays
compact (one JSON value per patient); renaming a key breaks stored data, so
add entries rather than rename them. Codes: WHO ATC for drugs, WHO ICD-10 for
conditions, SNOMED CT only where a well-known concept fits.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACUTE",
    "ALLERGIES",
    "CHECKUP_CENTRES",
    "CHRONIC",
    "CLINICS",
    "DIALYSIS",
    "DIALYSIS_CENTRES",
    "DRUGS",
    "ESRD",
    "HOSPITALS",
    "ORGS",
    "PHARMACIES",
    "SURGERIES",
    "TREATMENTS",
    "Allergy",
    "Condition",
    "Drug",
    "Org",
    "Procedure",
]


@dataclass(frozen=True, slots=True)
class Drug:
    name: str
    atc: str | None
    sig: str


@dataclass(frozen=True, slots=True)
class Condition:
    name: str
    icd10: str
    drugs: tuple[str, ...]
    prevalence: float  # at about age 75; scaled down for younger patients
    min_age: int = 20
    sex: str | None = None  # "1" or "2" when the condition is sex-specific


@dataclass(frozen=True, slots=True)
class Allergy:
    text: str
    category: str  # FHIR AllergyIntolerance.category
    kind: str  # "allergy" | "intolerance"
    reaction: str
    criticality: str  # "low" | "high" | "unable-to-assess"


@dataclass(frozen=True, slots=True)
class Procedure:
    name: str
    snomed: str | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True)
class Org:
    name: str
    kind: str  # "hospital" | "clinic" | "pharmacy" | "dialysis" | "checkup"


DRUGS: dict[str, Drug] = {
    "amlodipine5": Drug("アムロジピン錠5mg", "C08CA01", "1日1回朝食後 1回1錠"),
    "candesartan8": Drug("カンデサルタン錠8mg", "C09CA06", "1日1回朝食後 1回1錠"),
    "olmesartan20": Drug("オルメサルタン錠20mg", "C09CA08", "1日1回朝食後 1回1錠"),
    "telmisartan40": Drug("テルミサルタン錠40mg", "C09CA07", "1日1回朝食後 1回1錠"),
    "bisoprolol2_5": Drug("ビソプロロールフマル酸塩錠2.5mg", "C07AB07", "1日1回朝食後 1回1錠"),
    "furosemide20": Drug("フロセミド錠20mg", "C03CA01", "1日1回朝食後 1回1錠"),
    "warfarin1": Drug("ワルファリンカリウム錠1mg", "B01AA03", "1日1回朝食後 1回3錠"),
    "apixaban5": Drug("アピキサバン錠5mg", "B01AF02", "1日2回朝夕食後 1回1錠"),
    "edoxaban30": Drug("エドキサバン錠30mg", "B01AF03", "1日1回朝食後 1回1錠"),
    "rivaroxaban15": Drug("リバーロキサバン錠15mg", "B01AF01", "1日1回朝食後 1回1錠"),
    "aspirin100": Drug("アスピリン腸溶錠100mg", "B01AC06", "1日1回朝食後 1回1錠"),
    "clopidogrel75": Drug("クロピドグレル錠75mg", "B01AC04", "1日1回朝食後 1回1錠"),
    "nitroglycerin0_3": Drug("ニトログリセリン舌下錠0.3mg", "C01DA02", "胸痛発作時 1回1錠 舌下"),
    "metformin250": Drug("メトホルミン塩酸塩錠250mg", "A10BA02", "1日2回朝夕食後 1回1錠"),
    "sitagliptin50": Drug("シタグリプチン錠50mg", "A10BH01", "1日1回朝食後 1回1錠"),
    "linagliptin5": Drug("リナグリプチン錠5mg", "A10BH05", "1日1回朝食後 1回1錠"),
    "empagliflozin10": Drug("エンパグリフロジン錠10mg", "A10BK03", "1日1回朝食後 1回1錠"),
    "glimepiride1": Drug("グリメピリド錠1mg", "A10BB12", "1日1回朝食後 1回1錠"),
    "glargine": Drug("インスリン グラルギン注ソロスター", "A10AE04", "1日1回就寝前 10単位 皮下注"),
    "atorvastatin10": Drug("アトルバスタチン錠10mg", "C10AA05", "1日1回夕食後 1回1錠"),
    "rosuvastatin2_5": Drug("ロスバスタチン錠2.5mg", "C10AA07", "1日1回夕食後 1回1錠"),
    "lansoprazole15": Drug("ランソプラゾールOD錠15mg", "A02BC03", "1日1回朝食後 1回1錠"),
    "famotidine20": Drug("ファモチジン錠20mg", "A02BA03", "1日2回朝夕食後 1回1錠"),
    "mgo330": Drug("酸化マグネシウム錠330mg", "A02AA02", "1日3回毎食後 1回1錠"),
    "rebamipide100": Drug("レバミピド錠100mg", "A02BX14", "1日3回毎食後 1回1錠"),
    "acetaminophen200": Drug("アセトアミノフェン錠200mg", "N02BE01", "疼痛時 1回2錠"),
    "loxoprofen60": Drug("ロキソプロフェンナトリウム錠60mg", None, "疼痛時 1回1錠"),
    "pregabalin75": Drug("プレガバリンOD錠75mg", "N02BF02", "1日2回朝夕食後 1回1錠"),
    "levothyroxine50": Drug("レボチロキシンナトリウム錠50μg", "H03AA01", "1日1回朝食後 1回1錠"),
    "prednisolone5": Drug("プレドニゾロン錠5mg", "H02AB06", "1日1回朝食後 1回1錠"),
    "donepezil5": Drug("ドネペジル塩酸塩OD錠5mg", "N06DA02", "1日1回朝食後 1回1錠"),
    "zolpidem5": Drug("ゾルピデム酒石酸塩錠5mg", "N05CF02", "1日1回就寝前 1回1錠"),
    "brotizolam0_25": Drug("ブロチゾラム錠0.25mg", "N05CD09", "1日1回就寝前 1回1錠"),
    "levetiracetam500": Drug("レベチラセタム錠500mg", "N03AX14", "1日2回朝夕食後 1回1錠"),
    "montelukast10": Drug("モンテルカスト錠10mg", "R03DC03", "1日1回就寝前 1回1錠"),
    "tiotropium": Drug("チオトロピウム臭化物吸入用カプセル18μg", "R03BB04", "1日1回 1回1吸入"),
    "salbutamol": Drug("サルブタモール硫酸塩エアゾール", "R03AC02", "発作時 1回2吸入"),
    "tamsulosin0_2": Drug("タムスロシン塩酸塩OD錠0.2mg", "G04CA02", "1日1回朝食後 1回1錠"),
    "mirabegron50": Drug("ミラベグロン錠50mg", "G04BD12", "1日1回朝食後 1回1錠"),
    "febuxostat20": Drug("フェブキソスタット錠20mg", "M04AA03", "1日1回朝食後 1回1錠"),
    "allopurinol100": Drug("アロプリノール錠100mg", "M04AA01", "1日2回朝夕食後 1回1錠"),
    "lanthanum250": Drug("炭酸ランタンOD錠250mg", "V03AE03", "1日3回毎食直後 1回1錠"),
    "alendronate35": Drug("アレンドロン酸錠35mg", "M05BA04", "週1回起床時 1回1錠"),
    "amoxicillin250": Drug("アモキシシリンカプセル250mg", "J01CA04", "1日3回毎食後 1回2カプセル"),
    "levofloxacin500": Drug("レボフロキサシン錠500mg", "J01MA12", "1日1回朝食後 1回1錠"),
    "carbocisteine500": Drug("カルボシステイン錠500mg", "R05CB03", "1日3回毎食後 1回1錠"),
    "valaciclovir500": Drug("バラシクロビル錠500mg", "J05AB11", "1日3回毎食後 1回2錠"),
}

# Chronic conditions drive the long-term regimens (drug choices per condition).
CHRONIC: dict[str, Condition] = {
    "htn": Condition(
        "高血圧症", "I10", ("amlodipine5", "candesartan8", "olmesartan20", "telmisartan40"), 0.45
    ),
    "dm2": Condition(
        "2型糖尿病",
        "E11",
        ("metformin250", "sitagliptin50", "linagliptin5", "empagliflozin10", "glimepiride1"),
        0.17,
    ),
    "dl": Condition("脂質異常症", "E78.5", ("atorvastatin10", "rosuvastatin2_5"), 0.25),
    "af": Condition(
        "心房細動",
        "I48",
        ("warfarin1", "apixaban5", "edoxaban30", "rivaroxaban15"),
        0.05,
        min_age=50,
    ),
    "ap": Condition("狭心症", "I20.9", ("aspirin100", "nitroglycerin0_3"), 0.05, min_age=45),
    "omi": Condition("陳旧性心筋梗塞", "I25.2", ("clopidogrel75",), 0.02, min_age=45),
    "hf": Condition("慢性心不全", "I50.9", ("furosemide20", "bisoprolol2_5"), 0.04, min_age=55),
    "ckd": Condition("慢性腎臓病", "N18.9", (), 0.06, min_age=50),
    "stroke": Condition("脳梗塞後遺症", "I69.3", ("clopidogrel75",), 0.04, min_age=50),
    "dementia": Condition("アルツハイマー型認知症", "G30.9", ("donepezil5",), 0.06, min_age=65),
    "copd": Condition("慢性閉塞性肺疾患", "J44.9", ("tiotropium",), 0.03, min_age=50),
    "asthma": Condition("気管支喘息", "J45.9", ("montelukast10", "salbutamol"), 0.04, min_age=0),
    "gerd": Condition("逆流性食道炎", "K21.9", ("lansoprazole15", "famotidine20"), 0.08),
    "hypothyroid": Condition("甲状腺機能低下症", "E03.9", ("levothyroxine50",), 0.02),
    "epilepsy": Condition("てんかん", "G40.9", ("levetiracetam500",), 0.01, min_age=0),
    "bph": Condition("前立腺肥大症", "N40", ("tamsulosin0_2",), 0.15, min_age=50, sex="1"),
    "oab": Condition("過活動膀胱", "N32.8", ("mirabegron50",), 0.05, min_age=50),
    "gout": Condition("高尿酸血症", "E79.0", ("febuxostat20", "allopurinol100"), 0.06),
    "insomnia": Condition("不眠症", "G47.0", ("zolpidem5", "brotizolam0_25"), 0.08),
    "constipation": Condition("便秘症", "K59.0", ("mgo330",), 0.08, min_age=40),
    "ra": Condition("関節リウマチ", "M06.9", ("prednisolone5",), 0.01, min_age=30),
    "osteoporosis": Condition("骨粗鬆症", "M81.9", ("alendronate35",), 0.1, min_age=55, sex="2"),
    "lbp": Condition("腰痛症", "M54.5", ("loxoprofen60", "pregabalin75"), 0.06),
}

# Acute episodes: one visit, a short course of drugs, sometimes a treatment.
ACUTE: dict[str, Condition] = {
    "uri": Condition("急性上気道炎", "J06.9", ("acetaminophen200", "carbocisteine500"), 0.0, 0),
    "bronchitis": Condition("急性気管支炎", "J20.9", ("amoxicillin250", "carbocisteine500"), 0.0),
    "gastroenteritis": Condition("急性胃腸炎", "A09", ("rebamipide100", "famotidine20"), 0.0, 0),
    "cystitis": Condition("急性膀胱炎", "N30.0", ("levofloxacin500",), 0.0),
    "zoster": Condition("帯状疱疹", "B02.9", ("valaciclovir500", "acetaminophen200"), 0.0),
    "contusion": Condition("打撲傷", "T14.0", ("loxoprofen60",), 0.0, 0),
    "pneumonia": Condition("肺炎", "J18.9", ("levofloxacin500",), 0.0),
}

ESRD = Condition("末期腎不全（維持透析）", "N18.5", ("lanthanum250",), 0.0, min_age=40)

ALLERGIES: dict[str, Allergy] = {
    "penicillin": Allergy("ペニシリン系抗菌薬", "medication", "allergy", "全身の発疹", "high"),
    "cephem": Allergy("セフェム系抗菌薬", "medication", "allergy", "蕁麻疹", "low"),
    "contrast": Allergy("ヨード造影剤", "medication", "allergy", "蕁麻疹・呼吸困難", "high"),
    "nsaids": Allergy(
        "非ステロイド性抗炎症薬（NSAIDs）", "medication", "intolerance", "喘息発作", "high"
    ),
    "lidocaine": Allergy("局所麻酔薬（リドカイン）", "medication", "allergy", "血圧低下", "high"),
    "quinolone": Allergy("ニューキノロン系抗菌薬", "medication", "allergy", "発疹", "low"),
    "egg": Allergy("卵", "food", "allergy", "蕁麻疹", "low"),
    "wheat": Allergy("小麦", "food", "allergy", "アナフィラキシー", "high"),
    "buckwheat": Allergy("そば", "food", "allergy", "アナフィラキシー", "high"),
    "shellfish": Allergy("えび・かに（甲殻類）", "food", "allergy", "口唇の腫れ", "low"),
    "latex": Allergy("ラテックス", "environment", "allergy", "接触皮膚炎", "low"),
    "bee": Allergy("ハチ毒", "environment", "allergy", "アナフィラキシー", "high"),
}

SURGERIES: dict[str, Procedure] = {
    "lapchole": Procedure("腹腔鏡下胆嚢摘出術", "45595009"),
    "appendectomy": Procedure("虫垂切除術", "80146002"),
    "pci": Procedure("経皮的冠動脈ステント留置術"),
    "tha": Procedure("人工股関節置換術", "52734007"),
    "tka": Procedure("人工膝関節置換術", "609588000"),
    "cataract": Procedure("水晶体再建術（白内障手術）"),
    "cesarean": Procedure("帝王切開術", "11466000", sex="2"),
    "polypectomy": Procedure("内視鏡的大腸ポリープ切除術"),
    "pacemaker": Procedure("ペースメーカー移植術"),
    "gastrectomy": Procedure("腹腔鏡下幽門側胃切除術"),
    "mastectomy": Procedure("乳腺悪性腫瘍手術（乳房部分切除）", sex="2"),
    "hip_fracture": Procedure("大腿骨頸部骨折観血的手術"),
    "hernia": Procedure("鼠径ヘルニア手術"),
    "av_shunt": Procedure("内シャント設置術"),
}

TREATMENTS: dict[str, Procedure] = {
    "drip": Procedure("点滴注射"),
    "wound": Procedure("創傷処置"),
    "oxygen": Procedure("酸素吸入"),
    "home_oxygen": Procedure("在宅酸素療法指導管理"),
    "rehab": Procedure("運動器リハビリテーション"),
    "suction": Procedure("喀痰吸引"),
    "nebulizer": Procedure("ネブライザー"),
    "catheter": Procedure("導尿"),
    "joint_injection": Procedure("関節腔内注射"),
}

DIALYSIS = Procedure("人工腎臓（維持血液透析）", "302497006")

# Institutions: key prefix says the kind (h hospital, c clinic, p pharmacy,
# d dialysis centre, k health-check centre).
ORGS: dict[str, Org] = {
    "h01": Org("市立中央病院", "hospital"),
    "h02": Org("県立総合医療センター", "hospital"),
    "h03": Org("日本赤十字社 みなと赤十字病院", "hospital"),
    "h04": Org("済生会 北部病院", "hospital"),
    "h05": Org("大学附属病院", "hospital"),
    "h06": Org("労災病院", "hospital"),
    "h07": Org("医療法人 青葉会 青葉病院", "hospital"),
    "h08": Org("国立病院機構 東医療センター", "hospital"),
    "c01": Org("さくら内科クリニック", "clinic"),
    "c02": Org("みどりの森ファミリークリニック", "clinic"),
    "c03": Org("山田循環器内科", "clinic"),
    "c04": Org("ひかり整形外科", "clinic"),
    "c05": Org("あおぞら糖尿病内科クリニック", "clinic"),
    "c06": Org("駅前メンタルクリニック", "clinic"),
    "c07": Org("すずき泌尿器科", "clinic"),
    "c08": Org("たなか眼科", "clinic"),
    "c09": Org("こばやし呼吸器内科", "clinic"),
    "c10": Org("ふじ脳神経クリニック", "clinic"),
    "c11": Org("はなみずき消化器内科", "clinic"),
    "c12": Org("いとう小児科", "clinic"),
    "p01": Org("あおば調剤薬局", "pharmacy"),
    "p02": Org("すみれ薬局 駅前店", "pharmacy"),
    "p03": Org("ひまわり調剤薬局", "pharmacy"),
    "p04": Org("なの花薬局 中央店", "pharmacy"),
    "p05": Org("フロンティア薬局", "pharmacy"),
    "d01": Org("腎クリニック 透析センター", "dialysis"),
    "d02": Org("みなみ透析クリニック", "dialysis"),
    "k01": Org("健康管理センター", "checkup"),
    "k02": Org("総合健診センター", "checkup"),
}

HOSPITALS = tuple(k for k in ORGS if k.startswith("h"))
CLINICS = tuple(k for k in ORGS if k.startswith("c"))
PHARMACIES = tuple(k for k in ORGS if k.startswith("p"))
DIALYSIS_CENTRES = tuple(k for k in ORGS if k.startswith("d"))
CHECKUP_CENTRES = tuple(k for k in ORGS if k.startswith("k"))
